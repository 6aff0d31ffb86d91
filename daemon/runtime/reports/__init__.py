"""Carrying out a report: evidence at the edge, the spool and its delivery wiring, the daemon's
own crashes.
"""
