"""What the daemon publishes: the status snapshot, recent events, the view model that the page
and `top` share, and status.json on disk.
"""
