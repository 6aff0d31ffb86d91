"""Crash reports: building them, spooling them durably, delivering them to Sentry.

This package never imports ``daemon``; the daemon imports it.
"""
