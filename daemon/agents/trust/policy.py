"""Whose telemetry the receiver takes: the rule of ``[otlp] trust`` (pure).

Three modes (docs/security/budgets.md):

* ``any``: every request is taken (a valid token still marks it verified);
* ``watched`` (the default): a valid token, or a loopback sender whose process is in the
  tree of a process the daemon watches (the sender or one of its ancestors is a watched
  root, or an orphan the daemon still counts under its agent);
* ``token``: a valid token only.

A token that is present but wrong is refused in ``watched`` and ``token``: a stale or
forged token never falls back to the sender check. Refusals are 401 (token) or 403
(sender), which OTLP exporters do not retry; a sender the bounded lookup could not place
gets 503 with Retry-After instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from daemon.agents.trust.sender_token import TokenState
from daemon.config.schema import OtlpTrust

ProcKey = tuple[int, int]  # (pid, start time in clock ticks): survives pid reuse
SenderKind = Literal["watched", "unwatched", "unknown", "remote", "undecided"]


@dataclass(frozen=True, slots=True)
class WatchedTrees:
    """What the daemon's last tick watched: each root (and each orphan still counted under
    its agent) by process key, with its watch; every member pid, to look at them first."""

    roots: Mapping[ProcKey, str] = field(default_factory=dict)
    members: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a request, as far as the lookup found out."""

    kind: SenderKind
    pid: int | None = None
    watch: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Taken (``how``: token, watched, any) or refused (``how``: the counted reason).

    ``pid``: the sending process when the decision found it (a watched sender), so records
    of an agent that sends no ``process.pid`` can still be put to their process.
    """

    accepted: bool
    how: str
    status: int = 200
    detail: str = ""
    pid: int | None = None


def belongs_to(ancestry: Sequence[ProcKey], watched: WatchedTrees) -> str | None:
    """The watch whose tree holds a process, given the process and its ancestors (itself
    first); None when none of them is watched.

    >>> trees = WatchedTrees({(100, 7): "claude-code"}, (100, 120))
    >>> belongs_to([(130, 9), (120, 8), (100, 7), (1, 1)], trees)
    'claude-code'
    >>> belongs_to([(130, 9), (100, 6), (1, 1)], trees) is None  # pid 100 reused
    True
    """
    for key in ancestry:
        watch = watched.roots.get(key)
        if watch is not None:
            return watch
    return None


def needs_sender(mode: OtlpTrust, credential: TokenState) -> bool:
    """Whether the decision depends on who sent the request.

    >>> needs_sender("watched", "absent"), needs_sender("watched", "valid")
    (True, False)
    """
    return mode == "watched" and credential == "absent"


def decide(mode: OtlpTrust, credential: TokenState, sender: Sender | None) -> Verdict:
    """Take or refuse one request, given what its token header was worth (``credential``).

    >>> taken = decide("watched", "absent", Sender("watched", 42, "claude-code"))
    >>> taken.how, taken.pid
    ('watched', 42)
    >>> v = decide("watched", "absent", Sender("unwatched", 42))
    >>> v.accepted, v.status, v.how
    (False, 403, 'untrusted_sender')
    >>> decide("token", "invalid", None).status, decide("any", "invalid", None).accepted
    (401, True)
    """
    if mode == "any":
        return Verdict(True, "token" if credential == "valid" else "any")
    if credential == "valid":
        return Verdict(True, "token")
    if credential == "invalid":
        return Verdict(False, "bad_token", 401,
                       "the x-telemetryd-token header is not a token of this daemon")
    if mode == "token":
        return Verdict(False, "token_required", 401,
                       '[otlp] trust = "token": start the agent with `telemetryd wrap`')
    if sender is None or sender.kind == "undecided":
        return Verdict(False, "peer_lookup_busy", 503,
                       "the sending process could not be found in time; retry")
    if sender.kind == "watched":
        return Verdict(True, "watched", pid=sender.pid)
    return Verdict(False, "untrusted_sender", 403, _why(sender))


def _why(sender: Sender) -> str:
    tail = ('; start it with `telemetryd wrap`, watch it, or set [otlp] trust = "any" '
            "(docs/security/budgets.md)")
    if sender.kind == "remote":
        return "not a loopback connection and no telemetryd token" + tail
    if sender.kind == "unknown" or sender.pid is None:
        return "the sending process could not be identified and sent no token" + tail
    return f"the sending process (pid {sender.pid}) is not in a watched agent's tree" + tail
