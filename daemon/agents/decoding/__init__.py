"""OTLP export requests to normalized records, per agent (pure but for the series state)."""
