"""Agent telemetry over OTLP: receive, decode, price, store and budget what agents report."""
