"""Which connection a full listener drops: pure, over a snapshot of what each one is doing.

A listener holds at most ``max_connections`` connections. A new one past that evicts one
victim, chosen here from what every connection has done so far, so that a client whose
request arrives whole and at once is never the one dropped:

1. silent (nothing received since it opened or since its last answer) and older than the
   grace period, oldest first: a keep-alive connection at rest, or a connection held open
   by a churning client;
2. a request head still arriving, slowest first (bytes a second since it began);
3. a request body still arriving for longer than the grace period, slowest first;
4. an answer stuck in the write buffer (the client does not read) for longer than the grace
   period, longest stuck first;
5. silent and younger than the grace period, oldest first (a connection the newest churn
   opened; the newest goes last, as its request may be on its way).

Never dropped: a connection whose request is complete and being handled or answered at
pace, and one whose socket holds a whole request head not read yet (a request that arrived
whole while the event loop was busy: exactly the client to keep). Bytes waiting are not
enough: a client that writes half a head and hangs up leaves bytes too, and a listener that
kept those would go on past its cap, paying each new connection's admission with all of
them. When nothing can be dropped the listener goes past the cap, up to its reserve
(``server.py``).

Before any of that, at ``accept()`` (``admit_at_accept``): a listener full past its
reserve sheds a new connection without a whole request waiting, unless the oldest silent
one has been silent for the grace period (then the newcomer takes its place); past twice
the reserve it sheds every newcomer, so admission stays bounded whatever arrives. Shedding
costs an ``accept`` and a ``close``; building a connection costs a hundred times more, so a
client churning connections cannot keep the event loop from the requests that arrive whole.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass


class Phase(enum.Enum):
    """Where a connection is in its request/response cycle."""

    SILENT = "silent"  # nothing received since it opened or since its last answer
    HEAD = "head"  # part of a request head received
    BODY = "body"  # head complete, body still arriving
    HANDLING = "handling"  # request complete: being handled, or answered at pace
    STUCK = "stuck"  # answer written, client not reading it (write buffer not draining)


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """One connection as the chooser sees it.

    ``since`` is when the phase began (monotonic seconds); ``progress_bytes`` what arrived in
    it (head or body bytes).
    """

    key: int
    phase: Phase
    since: float
    progress_bytes: int = 0


def choose_victim(connections: Iterable[ConnectionView], now: float, grace_seconds: float,
                  request_waiting: Callable[[int], bool] = lambda key: False) -> int | None:
    """The key of the connection to drop, or None when none may be dropped.

    ``request_waiting(key)`` (whether a whole request head waits unread in its socket) is
    asked only of the silent or half-sent candidates about to be chosen (it costs a system
    call), in order, until one has none.

    >>> old = ConnectionView(1, Phase.SILENT, since=0.0)
    >>> new = ConnectionView(2, Phase.SILENT, since=9.9)
    >>> slow = ConnectionView(3, Phase.BODY, since=5.0, progress_bytes=5)
    >>> choose_victim([new, slow, old], now=10.0, grace_seconds=1.0)
    1
    >>> choose_victim([new, slow], now=10.0, grace_seconds=1.0)
    3
    >>> waiting = ConnectionView(4, Phase.SILENT, since=0.0)
    >>> busy = ConnectionView(5, Phase.HANDLING, since=0.0)
    >>> choose_victim([waiting, busy], now=10.0, grace_seconds=1.0,
    ...               request_waiting=lambda key: True) is None
    True
    """
    ranked = sorted((rank, view.key, view.phase) for view in connections
                    if (rank := _rank(view, now, grace_seconds)) is not None)
    for _, key, phase in ranked:
        if phase in (Phase.SILENT, Phase.HEAD) and request_waiting(key):
            continue  # a request that arrived whole and waits to be read: keep it
        return key
    return None


def admit_at_accept(open_connections: int, pending: int, max_connections: int,
                    request_waiting: bool, oldest_silent_seconds: float | None,
                    grace_seconds: float, reserve: int = 0) -> bool:
    """Whether a connection just accepted is served (False: closed at once).

    ``pending``: connections admitted but not built yet (asyncio accepts in batches).
    ``reserve``: room past the cap; a silent newcomer may take it, since on a busy machine
    the loop can accept a well-behaved client's connection before its request arrives (it
    is then the youngest silent one, evicted last). ``request_waiting``: a whole request
    head is already in its socket; such a newcomer is served past the reserve, up to twice
    the reserve.

    >>> admit_at_accept(3, 0, 32, False, None, 1.0)
    True
    >>> admit_at_accept(32, 0, 32, True, 0.01, 1.0, reserve=8)  # its request is here
    True
    >>> admit_at_accept(48, 0, 32, True, 0.01, 1.0, reserve=8)  # ... but past 2 reserves
    False
    >>> admit_at_accept(32, 0, 32, False, 0.01, 1.0)  # silent, and so is everyone else
    False
    >>> admit_at_accept(32, 0, 32, False, 4.0, 1.0)  # takes the place of a long-silent one
    True
    >>> admit_at_accept(32, 1, 32, False, 4.0, 1.0)  # ... unless another newcomer does
    False
    >>> admit_at_accept(33, 0, 32, False, 0.01, 1.0, reserve=8)  # room left in the reserve
    True
    >>> admit_at_accept(40, 0, 32, False, 0.01, 1.0, reserve=8)  # the reserve is full
    False
    """
    held = open_connections + pending
    if held < max_connections + reserve:
        return True
    if request_waiting:
        return held < max_connections + 2 * max(1, reserve)
    return (pending == 0 and oldest_silent_seconds is not None
            and oldest_silent_seconds >= grace_seconds)


def _rank(view: ConnectionView, now: float, grace: float) -> tuple[int, float] | None:
    """(class, order within the class) — lower goes first; None: never dropped."""
    age = max(0.0, now - view.since)
    if view.phase is Phase.SILENT:
        return (1 if age >= grace else 5, view.since)
    if view.phase is Phase.HEAD:
        return (2, _rate(view.progress_bytes, age))
    if view.phase is Phase.BODY:
        return (3, _rate(view.progress_bytes, age)) if age >= grace else None
    if view.phase is Phase.STUCK:
        return (4, view.since) if age >= grace else None
    return None


def _rate(progress_bytes: int, age_seconds: float) -> float:
    """Bytes a second, counting at least one second (a fresh phase is not judged slow).

    >>> _rate(10, 0.001), _rate(10, 5.0)
    (10.0, 2.0)
    """
    return progress_bytes / max(1.0, age_seconds)
