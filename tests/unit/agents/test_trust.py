"""The trust rule, the per-agent token, and the sender lookup on a procfs fixture."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from crash_reports.common.files import UnsafeFileError
from daemon.agents.trust.admission import Admission
from daemon.agents.trust.peer import Peer, PeerFinder, table_address
from daemon.agents.trust.policy import Sender, WatchedTrees, belongs_to, decide
from daemon.agents.trust.sender_token import (
    TOKEN_HEADER,
    KeyFileError,
    check_token,
    load_key,
    token_for,
)

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 4318)
AGENT, CHILD, OTHER = 500, 510, 900


@pytest.mark.parametrize(("mode", "credential", "kind", "expected"), [
    ("any", "absent", "unwatched", (True, "any")),
    ("any", "valid", "unwatched", (True, "token")),
    ("any", "invalid", "remote", (True, "any")),
    ("watched", "valid", "remote", (True, "token")),
    ("watched", "invalid", "watched", (False, "bad_token")),
    ("watched", "absent", "watched", (True, "watched")),
    ("watched", "absent", "unwatched", (False, "untrusted_sender")),
    ("watched", "absent", "unknown", (False, "untrusted_sender")),
    ("watched", "absent", "remote", (False, "untrusted_sender")),
    ("watched", "absent", "undecided", (False, "peer_lookup_busy")),
    ("token", "absent", "watched", (False, "token_required")),
    ("token", "valid", "remote", (True, "token")),
])
def test_each_mode_takes_what_it_says(mode: str, credential: str, kind: str,
                                      expected: tuple[bool, str]) -> None:
    """The table in docs/security/budgets.md, row by row."""
    verdict = decide(mode, credential, Sender(kind, 7))  # type: ignore[arg-type]
    assert (verdict.accepted, verdict.how) == expected
    if not verdict.accepted:
        assert verdict.status == {"bad_token": 401, "token_required": 401,
                                  "untrusted_sender": 403, "peer_lookup_busy": 503}[verdict.how]
        assert verdict.detail


def test_a_tree_is_known_by_its_root_key_not_by_a_reused_pid() -> None:
    """The sender's ancestors are compared by (pid, start time)."""
    trees = WatchedTrees({(AGENT, 11): "claude-code"})
    assert belongs_to([(CHILD, 20), (AGENT, 11), (1, 1)], trees) == "claude-code"
    assert belongs_to([(CHILD, 20), (AGENT, 12), (1, 1)], trees) is None
    assert belongs_to([], trees) is None


def test_a_token_is_bound_to_its_wrap_id_and_key() -> None:
    """Another key, another wrap id or a changed MAC is invalid; junk is invalid too."""
    key, other = b"a" * 32, b"b" * 32
    token = token_for(key, "0123abcd")
    assert check_token(key, token) == "valid"
    assert check_token(other, token) == "invalid"
    assert check_token(key, token.replace("0123abcd", "0123abce", 1)) == "invalid"
    assert check_token(key, token[:-1] + ("0" if token[-1] != "0" else "1")) == "invalid"
    for junk in ("x", ".", "ZZ.00", "0" * 65 + "." + "0" * 32, "\u00e9." + "0" * 32):
        assert check_token(key, junk) == "invalid"


def test_the_key_is_made_once_private_and_read_back(tmp_path: Path) -> None:
    """First use writes 64 hex characters 0600; later uses read the same key."""
    path = tmp_path / "otlp-token.key"
    key = load_key(path)
    assert len(key) == 32 and load_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["otlp-token.key"]  # no temp left


def test_a_planted_key_file_is_refused(tmp_path: Path) -> None:
    """A symlink or a file that is not a key is never used."""
    target = tmp_path / "elsewhere"
    target.write_text("0" * 64)
    (tmp_path / "link.key").symlink_to(target)
    with pytest.raises(UnsafeFileError):
        load_key(tmp_path / "link.key")
    (tmp_path / "short.key").write_text("abc")
    with pytest.raises(KeyFileError):
        load_key(tmp_path / "short.key")


def _hex(host: str, port: int, table: str) -> str:
    found = table_address(host, port, table)
    assert found is not None
    return found


def procfs(root: Path, *, inode: int = 4242, owner: int = AGENT,
           time_wait_first: bool = True) -> Path:
    """A /proc tree: the socket tables, processes 1 > AGENT > CHILD and OTHER, fd links."""
    local, remote = _hex(*CLIENT, "tcp"), _hex(*SERVER, "tcp")
    lines = ["  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
             "   uid  timeout inode"]
    if time_wait_first:  # a closed connection on the same addresses: inode 0
        lines.append(f"   0: {local} {remote} 06 00000000:00000000 03:00000F2D 00000000"
                     "     0        0 0 3 0000000000000000")
    lines += [f"   {n}: {_hex('127.0.0.1', 1000 + n, 'tcp')} {remote} 01 00000000:00000000 "
              f"00:00000000 00000000  1000        0 {100 + n} 1 0000000000000000 20 4 30 10 -1"
              for n in range(1, 1200)]
    lines.append(f" 1200: {local} {remote} 01 00000000:00000000 00:00000000 00000000  1000"
                 f"        0 {inode} 1 0000000000000000 20 4 30 10 -1")
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text("\n".join(lines) + "\n")
    (root / "net" / "tcp6").write_text(lines[0] + "\n")
    parents = {1: 0, AGENT: 1, CHILD: AGENT, OTHER: 1}
    for pid, ppid in parents.items():
        (root / str(pid) / "fd").mkdir(parents=True)
        (root / str(pid) / "stat").write_text(
            f"{pid} (p{pid}) S {ppid} {pid} {pid} 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 {pid * 10} "
            "1 1")
        for fd in range(3):
            (root / str(pid) / "fd" / str(fd)).symlink_to(f"socket:[{pid}{fd}]")
    (root / str(owner) / "fd" / "7").symlink_to(f"socket:[{inode}]")
    return root


def test_the_sender_is_found_from_its_socket_inode(tmp_path: Path) -> None:
    """The connection's line gives the inode (not the TIME_WAIT line before it), the fd link
    gives the process, its stat files its ancestors."""
    if sys.byteorder != "little":
        pytest.skip("the fixture is written as a little-endian kernel prints it")
    finder = PeerFinder(procfs(tmp_path, owner=CHILD))
    peer = finder.lookup(CLIENT, SERVER)
    assert peer == Peer(True, 4242, 1000, CHILD, 7, ((CHILD, CHILD * 10), (AGENT, AGENT * 10),
                                                     (1, 10)))
    assert finder.cached(CLIENT, SERVER) == peer
    (tmp_path / str(CHILD) / "fd" / "7").unlink()  # the socket closed: the cache says so
    assert finder.cached(CLIENT, SERVER) is None


def test_the_lookup_stops_at_its_bounds(tmp_path: Path) -> None:
    """Too few processes allowed, or no time left: undecided and not cached; the watched
    members are looked at first, so a watched sender is found within a tight bound."""
    if sys.byteorder != "little":
        pytest.skip("the fixture is written as a little-endian kernel prints it")
    root = procfs(tmp_path, owner=AGENT)
    tight = PeerFinder(root, max_pids=1)
    assert tight.lookup(CLIENT, SERVER).complete is False
    assert tight.cached(CLIENT, SERVER) is None
    assert PeerFinder(root, max_pids=1).lookup(CLIENT, SERVER, [AGENT]).pid == AGENT
    late = PeerFinder(root, deadline_seconds=-1.0)
    assert late.lookup(CLIENT, SERVER).complete is False
    small = PeerFinder(root, max_table_bytes=1024)
    assert small.lookup(CLIENT, SERVER).complete is False


def test_lookups_keep_to_their_share_of_a_core(tmp_path: Path) -> None:
    """After a lookup of d seconds the next may start only d * 4 later (20 % duty)."""
    if sys.byteorder != "little":
        pytest.skip("the fixture is written as a little-endian kernel prints it")
    now = [100.0]

    def clock() -> float:
        now[0] += 0.01  # every reading of the clock costs 10 ms
        return now[0]
    finder = PeerFinder(procfs(tmp_path), clock=clock)
    assert finder.ready()
    first = finder.lookup(CLIENT, SERVER)
    assert first.complete and not finder.ready()
    assert finder.lookup(("127.0.0.1", 1), SERVER).complete is False  # resting: undecided
    now[0] += 10.0
    assert finder.ready()


def test_admission_decides_on_the_loop_when_it_can(tmp_path: Path) -> None:
    """A valid token or a remote address needs no lookup; a loopback sender does, once per
    connection; the verdict follows the watched trees the tick hands in."""
    if sys.byteorder != "little":
        pytest.skip("the fixture is written as a little-endian kernel prints it")
    key = os.urandom(32)
    admission = Admission("watched", key, PeerFinder(procfs(tmp_path, owner=CHILD)))
    token = {TOKEN_HEADER: token_for(key, "ab12")}
    assert admission.quick(token, CLIENT, SERVER).how == "token"  # type: ignore[union-attr]
    assert admission.quick({TOKEN_HEADER: "ab12.00"}, CLIENT, SERVER).how == "bad_token"  # type: ignore[union-attr]
    remote = admission.quick({}, ("10.1.2.3", 5), SERVER)
    assert remote is not None and remote.status == 403
    assert admission.quick({}, CLIENT, SERVER) is None  # needs the lookup thread
    assert admission.lookup({}, CLIENT, SERVER).how == "untrusted_sender"
    admission.set_watched(WatchedTrees({(AGENT, AGENT * 10): "claude-code"}, (AGENT, CHILD)))
    verdict = admission.quick({}, CLIENT, SERVER)  # cached now
    assert verdict is not None and (verdict.accepted, verdict.how) == (True, "watched")
