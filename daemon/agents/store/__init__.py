"""The agent event store: SQLite, its writer thread and the queries over it."""
