"""One daemon thread fed by a bounded queue: the shape of every worker that keeps slow work
(watch actions, leak evidence, …) off the tick.

``submit`` never blocks (False when the queue is full: the caller decides what a drop
means); the thread starts with the first item, and again if it ever died; ``stop`` ends it
after the item under way, waiting at most ``timeout`` (it is a daemon thread, so a stuck
item cannot hold up the process's exit).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueWorker(Generic[T]):
    """``handle`` runs on the worker thread, once per submitted item, in order.

    >>> done = []
    >>> worker = QueueWorker("demo", done.append, queue_size=2)
    >>> worker.submit(1), worker.submit(2)
    (True, True)
    >>> worker.stop(5.0); done
    [1, 2]
    """

    def __init__(self, name: str, handle: Callable[[T], None], queue_size: int) -> None:
        self._name = name
        self._handle = handle
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, item: T) -> bool:
        """Queue one item; False when the queue is full."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=self._name,
                                                daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def stop(self, timeout: float) -> None:
        """Ask the thread to end after its item, waiting at most ``timeout``."""
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        thread.join(timeout)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._handle(item)
