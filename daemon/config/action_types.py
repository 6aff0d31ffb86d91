"""What a watch's ``on_*`` keys hold: typed actions (parsed by ``actions.py``), pure values."""

from __future__ import annotations

from dataclasses import dataclass

MAX_ACTIONS = 8  # actions per on_* key


@dataclass(frozen=True)
class NotifyAction:
    """``{ notify = true }``: a desktop notification naming the agent, level and time left."""

    timeout_seconds: float = 5.0

    def describe(self) -> str:
        """One line for logs, reports and check-config."""
        return "notify"


@dataclass(frozen=True)
class ExecAction:
    """``{ exec = [...], timeout = "10s" }``: a program run without a shell."""

    argv: tuple[str, ...]
    timeout_seconds: float = 10.0

    def describe(self) -> str:
        """One line for logs, reports and check-config (the program, not its arguments)."""
        return f"exec {self.argv[0]} (timeout {self.timeout_seconds:g}s)"


@dataclass(frozen=True)
class SignalAction:
    """``{ signal = "SIGTERM", grace = "30s" }``: a signal to the tree's root, then SIGKILL."""

    signal: int
    grace_seconds: float | None = None

    def describe(self) -> str:
        """One line for logs, reports and check-config."""
        import signal

        grace = f", SIGKILL after {self.grace_seconds:g}s" if self.grace_seconds else ""
        return f"signal {signal.Signals(self.signal).name}{grace}"


WatchAction = NotifyAction | ExecAction | SignalAction
