"""The receiver's acceptance hook: the token, the sender and ``[otlp] trust`` put together.

``quick`` answers on the event loop whenever no lookup is needed (mode ``any`` or
``token``, a token header, a connection whose sender is cached); otherwise the receiver runs
``lookup`` on its lookup thread. The tick hands in what it watches (``set_watched``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from daemon.agents.trust.peer import Endpoint, Peer, PeerFinder
from daemon.agents.trust.policy import (
    Sender,
    Verdict,
    WatchedTrees,
    belongs_to,
    decide,
    needs_sender,
)
from daemon.agents.trust.sender_token import TOKEN_HEADER, TokenState, check_token
from daemon.config.schema import OtlpTrust


def is_loopback(host: str) -> bool:
    """Whether a client address is this machine's loopback (IPv4-mapped included).

    >>> is_loopback("127.0.0.1"), is_loopback("::ffff:127.0.0.2"), is_loopback("10.0.0.1")
    (True, True, False)
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


class Admission:
    """Decides, per request, whether telemetry is taken (see ``daemon.agents.trust.policy``)."""

    def __init__(self, mode: OtlpTrust, key: bytes | None, finder: PeerFinder | None = None
                 ) -> None:
        self.mode = mode
        self.key = key
        self.finder = finder or PeerFinder()
        self.watched = WatchedTrees()

    def set_watched(self, trees: WatchedTrees) -> None:
        """What the last tick watched (one reference swap: readers on other threads)."""
        self.watched = trees

    def credential(self, headers: Mapping[str, str]) -> TokenState:
        """What the request's token header is worth."""
        return check_token(self.key, headers.get(TOKEN_HEADER))

    def quick(self, headers: Mapping[str, str], client: Endpoint | None,
              server: Endpoint | None) -> Verdict | None:
        """The verdict when it needs no lookup; None when ``lookup`` must run."""
        credential = self.credential(headers)
        if not needs_sender(self.mode, credential):
            return decide(self.mode, credential, None)
        if client is None or server is None or not is_loopback(client[0]):
            return decide(self.mode, credential, Sender("remote"))
        peer = self.finder.cached(client, server)
        if peer is None:
            return None
        return decide(self.mode, credential, self.sender(peer))

    def lookup(self, headers: Mapping[str, str], client: Endpoint, server: Endpoint
               ) -> Verdict:
        """Find the sender (blocking, bounded: run it off the event loop) and decide."""
        peer = self.finder.lookup(client, server, self.watched.members)
        return decide(self.mode, self.credential(headers), self.sender(peer))

    def sender(self, peer: Peer) -> Sender:
        """Who the found peer is to the trust rule (pure given the watched trees)."""
        if not peer.complete:
            return Sender("undecided")
        if peer.pid is None:
            return Sender("unknown")
        watch = belongs_to(peer.ancestry, self.watched)
        return Sender("watched" if watch else "unwatched", peer.pid, watch)
