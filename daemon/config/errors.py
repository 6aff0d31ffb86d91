"""The one error a user's config causes: where it is and what was expected."""

from __future__ import annotations


class ConfigError(Exception):
    """A user-caused configuration problem: where it is and what was expected."""

    def __init__(self, source: str, key: str | None, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")
