"""`telemetryd wrap`: the agent as a child, announced to the daemon, reported when killed."""
