"""What `/metrics` exposes: the daemon's, the watches', the agents' and the guard's series,
rendered once per interval.
"""
