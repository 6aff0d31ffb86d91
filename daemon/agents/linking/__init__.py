"""Which agent telemetry belongs to a watched tree, and how it was matched (pid, environment,
agent and time).
"""
