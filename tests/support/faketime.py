"""A wall clock that a test can step for one daemon (libfaketime), the monotonic clock untouched.

libfaketime is preloaded into the daemon with ``FAKETIME_TIMESTAMP_FILE`` (the offset, e.g.
``-1h``) and ``FAKETIME_NO_CACHE=1``, so each write of the file is a step the daemon sees at
its next clock read. ``FAKETIME_DONT_FAKE_MONOTONIC=1`` keeps ``CLOCK_MONOTONIC`` real, as an
NTP step or a resume from suspend does (with it faked, Python's timed waits hang).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime",
                "/usr/lib/faketime", "/usr/local/lib/faketime")


def library() -> str:
    """The path of libfaketime.so.1; fails with how to install it."""
    for folder in LIBRARY_DIRS:
        path = Path(folder) / "libfaketime.so.1"
        if path.exists():
            return str(path)
    assert shutil.which("faketime"), "faketime is not installed: .ci/run installs it"
    raise AssertionError("libfaketime.so.1 not found next to the faketime command")


class SteppedClock:
    """The offset file of one daemon's fake wall clock."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "faketime.rc"
        self.set("+0")

    def set(self, offset: str) -> None:
        """Step the wall clock to ``offset`` from real time (``-1h``, ``+0``, ``+1h``)."""
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(offset + "\n")
        os.replace(temporary, self.path)  # never a half-written file for the daemon to read

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with libfaketime preloaded and reading this file on every clock call."""
        env = dict(base)
        env.update(LD_PRELOAD=library(), FAKETIME_TIMESTAMP_FILE=str(self.path),
                   FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
        return env
