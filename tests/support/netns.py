"""Hosts on one machine for fleet tests: network namespaces on a bridge the test owns.

``Fleet`` creates a bridge with a /24 no route of this machine uses, one network namespace
per host with a veth on the bridge and its loopback up, and removes all of it on ``close``
(namespaces, then the bridge), whatever happened. Names carry a random suffix, so runs side
by side never share one. ``Relay`` puts a listening socket on a host's own 127.0.0.1 (a
thread enters the namespace with setns(2) only to create it) and forwards each connection
to a port on this namespace's loopback: how a host reaches a test server (Bugsink) without
any traffic leaving loopback and the test's own addresses.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import random
import selectors
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")


def ip(*args: str) -> str:
    """Run `ip ARGS` (raising with its stderr on failure)."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def unused_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that overlaps no address or route of this machine."""
    taken = [ipaddress.ip_network(word, strict=False)
             for line in (ip("-4", "route", "show", "table", "all") + ip("-4", "-o", "addr"))
             .splitlines() for word in line.split()
             if "/" in word and word[0].isdigit()]
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(other) for other in taken):
            return net
    raise RuntimeError("no unused 10.x.y.0/24 subnet")


@dataclass
class Host:
    """One host: its namespace name and its address on the bridge."""

    name: str
    netns: str
    address: str


@dataclass
class Fleet:
    """A bridge and the hosts' namespaces; ``close()`` removes everything it made."""

    subnet: ipaddress.IPv4Network = field(default_factory=unused_subnet)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, Host] = field(default_factory=dict)
    _made_bridge: bool = False

    @property
    def bridge(self) -> str:
        return f"tdbr{self.suffix}"

    @property
    def gateway(self) -> str:
        """This namespace's address on the bridge."""
        return str(self.subnet.network_address + 1)

    def open(self) -> Fleet:
        ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str) -> Host:
        """A namespace with loopback up and a veth on the bridge at the next address."""
        index = len(self.hosts)
        host = Host(name, f"telemetryd-{self.suffix}-{name}",
                    str(self.subnet.network_address + 2 + index))
        self.hosts[name] = host
        ip("netns", "add", host.netns)
        outside = f"tdv{self.suffix}{index}"
        ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}",
           "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")
        ip("-n", host.netns, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        """Delete the veths, the namespaces and the bridge."""
        for index, host in enumerate(self.hosts.values()):
            with contextlib.suppress(RuntimeError):
                ip("link", "del", f"tdv{self.suffix}{index}")
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", host.netns)
        if self._made_bridge:
            with contextlib.suppress(RuntimeError):
                ip("link", "del", self.bridge)

    def leftovers(self) -> list[str]:
        """Namespaces and links of this fleet that still exist (for the cleanup check)."""
        names = [h.netns for h in self.hosts.values() if (NETNS_DIR / h.netns).exists()]
        links = ip("-o", "link").split("\n")
        names += [line.split(":")[1].strip() for line in links
                  if line and self.suffix in line.split(":")[1]]
        return names


def listen_in_netns(netns: str, port: int) -> socket.socket:
    """A TCP socket listening on 127.0.0.1:``port`` inside ``netns`` (usable from any thread)."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_bind() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            made.append(sock)
        except BaseException as exc:
            failed.append(exc)
        finally:
            os.close(fd)

    # The thread ends in the namespace; the socket stays there, the test's threads stay here.
    thread = threading.Thread(target=enter_and_bind)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


class Relay:
    """Forwards connections from 127.0.0.1:port in each given namespace to 127.0.0.1:port here."""

    def __init__(self, port: int, namespaces: list[str]) -> None:
        self.port = port
        self._listeners = [listen_in_netns(ns, port) for ns in namespaces]
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._pairs: dict[socket.socket, socket.socket] = {}
        for sock in self._listeners:
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, "accept")
        self._thread = threading.Thread(target=self._run, name="fleet-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if key.data == "accept":
                    self._accept(sock)
                else:
                    self._pump(sock)

    def _accept(self, listener: socket.socket) -> None:
        try:
            inner, _ = listener.accept()
        except BlockingIOError:
            return
        try:
            outer = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        except OSError:
            inner.close()
            return
        for a, b in ((inner, outer), (outer, inner)):
            a.setblocking(True)
            a.settimeout(10)
            self._pairs[a] = b
            self._selector.register(a, selectors.EVENT_READ, "pump")

    def _pump(self, sock: socket.socket) -> None:
        peer = self._pairs.get(sock)
        try:
            data = sock.recv(65536)
            if data and peer is not None:
                peer.sendall(data)
                return
        except OSError:
            pass
        for end in (sock, peer):
            if end is not None and end in self._pairs:
                self._selector.unregister(end)
                del self._pairs[end]
                end.close()

    def close(self) -> None:
        """Stop forwarding; close every socket."""
        self._stop.set()
        self._thread.join(5)
        for sock in [*self._listeners, *self._pairs]:
            sock.close()
