"""Host integration: service unit text, sd_notify and log set-up."""
