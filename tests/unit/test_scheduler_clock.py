"""The tick's scheduler moves its run times by each wall-clock step it sees."""

from __future__ import annotations

import datetime as dt

from daemon.runtime.scheduler import TICK_JOB_ID, make_scheduler


class SteppingWall:
    """Fault injection: a wall clock the test steps; the monotonic clock stays real."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return dt.datetime.now(dt.UTC).timestamp() + self.offset


def test_pending_run_time_follows_a_step_back_and_forward() -> None:
    """An hour back moves the next run an hour back (so it is due on time); forward likewise."""
    steps: list[float] = []
    scheduler = make_scheduler(lambda: None, 1.0, lambda exc, tb: None,
                               on_clock_step=steps.append)
    wall = SteppingWall()
    scheduler._wall = wall
    job = scheduler.get_job(TICK_JOB_ID)
    planned = job.next_run_time
    assert not scheduler._follow_clock()  # the baseline
    wall.offset = -3600.0
    assert scheduler._follow_clock()
    moved = scheduler.get_job(TICK_JOB_ID).next_run_time
    assert abs((moved - planned).total_seconds() + 3600.0) < 0.05
    wall.offset = 3600.0
    assert scheduler._follow_clock()
    moved = scheduler.get_job(TICK_JOB_ID).next_run_time
    assert abs((moved - planned).total_seconds() - 3600.0) < 0.05
    assert [round(s) for s in steps] == [-3600, 7200]
    assert not scheduler._follow_clock()  # no step, nothing moved
