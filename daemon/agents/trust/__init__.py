"""Whose telemetry the receiver takes: the sender's token, or its process found from the
loopback socket.
"""
