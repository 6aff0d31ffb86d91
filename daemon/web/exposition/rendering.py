"""One rendering of an expensive answer, shared by every request for an interval.

``/metrics`` is several MB of text that takes a few hundred ms of CPU to build. Scrapers
that come at once, or come back as fast as they can, share one rendering: it is built at
most once per ``interval_seconds`` (the daemon's sampling interval: the data behind it
changes once a tick) and is served for that long after it is built, on the given pool,
never on the event loop; requests arriving while it is built wait for that same rendering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor


class SharedRendering:
    """``await get()`` returns the last rendering while it is fresh, else a new one.

    A failed rendering fails the requests that waited for it and is not kept.
    """

    def __init__(self, render: Callable[[], bytes], interval_seconds: float, pool: Executor,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._render = render
        self.interval_seconds = interval_seconds
        self._pool = pool
        self._monotonic = monotonic
        self._body: bytes | None = None
        self._rendered_at = 0.0
        self._pending: asyncio.Future[bytes] | None = None
        self.renders = 0

    async def get(self) -> bytes:
        """The rendering (call on the event loop)."""
        now = self._monotonic()
        if self._body is not None and now - self._rendered_at < self.interval_seconds:
            return self._body
        if self._pending is None:
            self.renders += 1
            pending = asyncio.get_running_loop().run_in_executor(self._pool, self._render)
            pending.add_done_callback(self._settle)
            self._pending = pending
        # shield: a waiter that goes away (client gone) does not cancel the others' rendering
        return await asyncio.shield(self._pending)

    def _settle(self, done: asyncio.Future[bytes]) -> None:
        self._pending = None
        if not done.cancelled() and done.exception() is None:
            self._body, self._rendered_at = done.result(), self._monotonic()
