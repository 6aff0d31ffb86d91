"""Wall-clock steps seen against the monotonic clock (pure).

The wall clock jumps when NTP steps it, when someone sets it, and by the length of a suspend
(``CLOCK_MONOTONIC`` stops while suspended; the wall clock does not). The monotonic clock
never jumps. Their difference stays put between steps (NTP slews both alike), so a change of
the difference is a step, and its size is how far the wall clock jumped.
"""

from __future__ import annotations

from dataclasses import dataclass

STEP_TOLERANCE_SECONDS = 0.05


@dataclass
class StepDetector:
    """How far the wall clock stepped since the last step it reported.

    >>> steps = StepDetector()
    >>> steps.observe(wall=1000.0, monotonic=10.0)  # the first reading sets the baseline
    0.0
    >>> steps.observe(wall=1001.0, monotonic=11.0)  # both advanced alike
    0.0
    >>> steps.observe(wall=-2598.0, monotonic=12.0)  # back an hour
    -3600.0
    >>> steps.observe(wall=4603.0, monotonic=13.0)  # forward two hours (a resume)
    7200.0
    >>> steps.observe(wall=4604.01, monotonic=14.0)  # within the tolerance: no step
    0.0
    """

    tolerance_seconds: float = STEP_TOLERANCE_SECONDS
    _offset: float | None = None

    def observe(self, wall: float, monotonic: float) -> float:
        """The step (seconds, + forward) since the last reported one, or 0.0 for none.

        Drift below the tolerance adds up until it is reported as a step of its own.
        """
        offset = wall - monotonic
        if self._offset is None:
            self._offset = offset
            return 0.0
        step = offset - self._offset
        if abs(step) < self.tolerance_seconds:
            return 0.0
        self._offset = offset
        return step
