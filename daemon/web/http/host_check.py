"""Which ``Host`` and ``Origin`` a listener serves: the defence against DNS rebinding.

A web page can make the user's browser send requests to 127.0.0.1: directly (then the
browser sends the page's ``Origin`` and the request is cross-origin), or by rebinding its
own name to 127.0.0.1 (then the request is same-origin for the page and carries
``Host: rebind.attacker.example``). A listener therefore answers only requests whose
``Host`` names this machine's loopback or the configured listen address, and whose
``Origin``, when there is one, is the listener's own.

- Served hosts: ``localhost``, loopback IP literals (``127.0.0.1``, ``[::1]``), the
  configured listen host and, when that host is a wildcard (``0.0.0.0``, ``::``), any IP
  literal (an IP address cannot be rebound); any port, so an SSH tunnel still works.
- Otherwise: 421 Misdirected Request; a request without ``Host`` (HTTP/1.0) too.
- An ``Origin`` other than the listener's scheme (``http://``, or ``https://`` when it
  serves TLS) + the request's own ``Host`` (``null`` included): 403 Forbidden.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_AUTHORITY = re.compile(r"(?:\[([0-9a-f:.]+)\]|([^:\[\]/@\s]+))(?::(\d{1,5}))?")
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (recognised, not bound)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not served: its HTTP status and a stable reason."""

    status: int
    reason: str


MISDIRECTED = Refusal(421, "misdirected_host")
CROSS_ORIGIN = Refusal(403, "cross_origin")


def parse_authority(text: str) -> tuple[str, int | None] | None:
    """``host[:port]`` or ``[v6][:port]`` as (lower-case host, port); None if malformed.

    >>> parse_authority("LocalHost:9464"), parse_authority("[::1]")
    (('localhost', 9464), ('::1', None))
    >>> parse_authority("localhost.:80"), parse_authority("a b") is None
    (('localhost', 80), True)
    """
    match = _AUTHORITY.fullmatch(text.strip().lower())
    if match is None:
        return None
    host = match.group(1) or match.group(2)
    if host.endswith(".") and match.group(2):
        host = host[:-1]
    port = int(match.group(3)) if match.group(3) else None
    if port is not None and port > 65535:
        return None
    return host, port


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The hosts one listener serves, from its configured listen host; ``tls`` when it
    serves HTTPS (its pages' origin is then ``https://``)."""

    listen_host: str
    tls: bool = False

    def host_allowed(self, host: str) -> bool:
        """Whether a (parsed, lower-case) host names this listener.

        >>> HostPolicy("127.0.0.1").host_allowed("localhost")
        True
        >>> HostPolicy("127.0.0.1").host_allowed("rebind.attacker.example")
        False
        >>> HostPolicy("0.0.0.0").host_allowed("192.0.2.7")
        True
        """
        if host == "localhost":
            return True
        address = _ip(host)
        if address is not None and address.is_loopback:
            return True
        listen = self.listen_host.strip("[]").lower()
        if host == listen:
            return True
        listen_ip = _ip(listen)
        return address is not None and (
            listen in _WILDCARDS or (listen_ip is not None and listen_ip == address))

    def check(self, host_header: str | None, origin: str | None) -> Refusal | None:
        """None when the request may be served, else why not.

        >>> policy = HostPolicy("127.0.0.1")
        >>> policy.check("127.0.0.1:4318", None) is None
        True
        >>> policy.check("rebind.attacker.example:4318", None).status
        421
        >>> policy.check("localhost:9464", "http://localhost:9464") is None
        True
        >>> policy.check("localhost:9464", "http://evil.example").status
        403
        >>> tls = HostPolicy("0.0.0.0", tls=True)
        >>> tls.check("10.0.0.2:9464", "https://10.0.0.2:9464") is None
        True
        """
        parsed = parse_authority(host_header) if host_header is not None else None
        if parsed is None or not self.host_allowed(parsed[0]):
            return MISDIRECTED
        if origin is not None and not _same_origin(origin, parsed, self.tls):
            return CROSS_ORIGIN
        return None


def _same_origin(origin: str, host: tuple[str, int | None], tls: bool = False) -> bool:
    """Whether ``origin`` is ``http://`` (``https://`` with ``tls``) + the request's host
    (port 80, or 443 with ``tls``, when not given).

    >>> _same_origin("http://[::1]:9464", ("::1", 9464)), _same_origin("null", ("::1", 80))
    (True, False)
    >>> _same_origin("https://localhost:9464", ("localhost", 9464))
    False
    >>> _same_origin("https://localhost:9464", ("localhost", 9464), tls=True)
    True
    >>> _same_origin("http://localhost:9464", ("localhost", 9464), tls=True)
    False
    >>> _same_origin("https://localhost", ("localhost", 443), tls=True)
    True
    """
    scheme, sep, rest = origin.strip().lower().partition("://")
    if scheme != ("https" if tls else "http") or not sep:
        return False
    parsed = parse_authority(rest)
    if parsed is None:
        return False
    default_port = 443 if tls else 80
    return (parsed[0], parsed[1] or default_port) == (host[0], host[1] or default_port)
