"""The edge of watching: the process table, selectors, the sampler, wrap's announcements and
what is kept of trees across restarts.
"""
