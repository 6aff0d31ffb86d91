"""Every class of control character (C0, DEL, C1 with the 0x9b CSI, ESC sequences such as
OSC 52 that writes the clipboard and CSI 2J that clears the screen, bidirectional overrides,
zero-width characters) put into every name a human-facing output shows — process, watch,
agent, model, tool and session names, event texts, report titles, hook input — reaches none
of `status`, `stats`, `reports list/show`, `budget check`, `top --once`, `check-config` or the
log lines raw."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from crash_reports.spool.store import Spool
from daemon.agents.decoding.records import Agent, CostUsage, TokenUsage, ToolCall
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.today import AgentToday
from daemon.status.recent_events import EventKind, RecentEvent
from daemon.status.status_file import write_snapshot
from tests.support.daemon_proc import REPO, clean_env, cli
from tests.support.snapshots import process, snapshot, watch

CLASSES = {
    "C0": "".join(chr(code) for code in range(0x20) if chr(code) != "\n"),
    "newline": "N\nL",
    "DEL": "\x7f",
    "C1": "".join(chr(code) for code in range(0x80, 0xA0)),
    "CSI 0x9b": "\x9b2J",
    "OSC 52": "\x1b]52;c;cHduZWQ=\x07",
    "CSI 2J": "\x1b[2J\x1b[H",
    "bidi": "\u202e\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
    "zero-width": "\u200b\u200c\u200d\u2060\ufeff",
    "line separators": "\u2028\u2029",
}
EVIL = "evil" + "".join(CLASSES.values()) + "end"
# What must never reach a terminal: every character of the classes but printable ASCII.
CONTROLS = frozenset(char for char in EVIL if not " " <= char <= "~") - {"\n"}


def raw(text: str) -> list[str]:
    """The control classes that reached ``text`` raw (a newline only as part of ``N\\nL``)."""
    found = sorted({f"U+{ord(char):04X}" for char in text if char in CONTROLS})
    return found + (["newline"] if "N\nL" in text else [])


def strings(document: object) -> list[str]:
    """Every string value in a parsed JSON document."""
    if isinstance(document, str):
        return [document]
    if isinstance(document, dict):
        return [s for value in document.values() for s in strings(value)]
    if isinstance(document, list):
        return [s for value in document for s in strings(value)]
    return []


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly (every character escaped)."""
    return '"' + "".join(f"\\U{ord(char):08X}" for char in text) + '"'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config, status.json, event store and spool whose names carry every class."""
    root = tmp_path_factory.mktemp("hostile")
    state = root / "state"
    state.mkdir(mode=0o700)
    config = root / "telemetryd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{state}"\n'
                      f"[[watch]]\nname = {toml_string('w-' + EVIL)}\npid = 1\n"
                      '[[budget]]\nagent = "*"\nsession_usd = 0.000001\n')
    now = time.time()
    events = tuple(RecentEvent(now - n, kind, f"{kind.value} {EVIL}", "w")
                   for n, kind in enumerate((EventKind.CRITICAL, EventKind.WARNING)))
    write_snapshot(state / "status.json", replace(
        snapshot([watch("w-" + EVIL, process(101, name="p-" + EVIL))], now=now),
        agents=(AgentToday("a-" + EVIL, 1000, 1.5, 0.5, 1, 50.0),), events=events))
    store = EventStore(state / "events.db", 30.0, 64 * 1024**2)
    agent = Agent("a-" + EVIL, "i-" + EVIL, "s-" + EVIL, None, "svc-" + EVIL)
    store.append([
        TokenUsage(now, agent, "s-" + EVIL, "m-" + EVIL, "input", 10, cost_usd=2.0,
                   cost_status="computed"),
        CostUsage(now, agent, "s-" + EVIL, "m-" + EVIL, 2.0),
        ToolCall(now, agent, "s-" + EVIL, "t-" + EVIL, False, 1, 5.0),
    ])
    store.close()
    event = {"event_id": uuid.uuid4().hex, "message": "title-" + EVIL,
             "tags": {"watch": "w-" + EVIL, "kind": "k-" + EVIL},
             "contexts": {"process": {"name": "p-" + EVIL}}}
    body = json.dumps(event).encode()
    Spool(state / "spool").put(
        json.dumps({"event_id": event["event_id"]}).encode() + b"\n"
        + json.dumps({"type": "event", "length": len(body)}).encode() + b"\n" + body + b"\n")
    return config


HOOK_INPUT = json.dumps({"session_id": "s-" + EVIL, "tool_name": "t-" + EVIL})
OUTPUTS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "status": (("status",), None),
    "status --json": (("status", "--json"), None),
    "stats by agent": (("stats", "--by", "agent"), None),
    "stats by model": (("stats", "--by", "model"), None),
    "stats by tool": (("stats", "--by", "tool"), None),
    "stats by session": (("stats", "--by", "session"), None),
    "stats --json": (("stats", "--json", "--by", "tool"), None),
    "reports list": (("reports", "list"), None),
    "reports list --json": (("reports", "list", "--json"), None),
    "reports show": (("reports", "show", "{id}"), None),
    "budget check --hook": (("budget", "check", "--hook"), HOOK_INPUT),
    # An argument cannot hold NUL: every other class.
    "budget check --session": (("budget", "check", "--session", "s-" + EVIL.replace("\0", "")),
                               None),
    "top --once": (("top", "--once"), None),
    "check-config": (("check-config",), None),
    "check-config --json": (("check-config", "--json"), None),
}


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_no_control_character_reaches_the_terminal(hostile: Path, name: str) -> None:
    """Each output shows the hostile names escaped: no control character, no line break of
    theirs; a JSON output still parses back to the very same strings."""
    args, stdin = OUTPUTS[name]
    if "{id}" in args:
        [entry] = Spool(hostile.parent / "state" / "spool").list_all()
        args = tuple(entry.id if arg == "{id}" else arg for arg in args)
    shown = cli("--config", str(hostile), *args, input_text=stdin)
    both = shown.stdout + shown.stderr
    assert "evil" in both, both  # the hostile names are there, escaped
    assert raw(both) == [], (name, both[:3000])
    if "--json" in args:
        assert any(EVIL in text for text in strings(json.loads(shown.stdout)))


LOG_SCRIPT = """
import json, sys, structlog
from daemon.system.logs import configure_logging
configure_logging(sys.argv[1], "info")
values = json.loads(sys.stdin.read())
structlog.get_logger("t").warning("process.seen", **values, members=list(values.values()))
"""


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_no_control_character_reaches_a_log_line(log_format: str) -> None:
    """The real logging pipeline escapes every class, each in a field of its own (the console
    format quotes a value with a space or a newline, but writes any other as it is), in
    console and JSON lines alike; a JSON line still parses."""
    values = {f"name_{index}": f"evil{chars}end" for index, chars in enumerate(CLASSES.values())}
    done = subprocess.run([sys.executable, "-c", LOG_SCRIPT, log_format],
                          input=json.dumps(values), capture_output=True, text=True,
                          env=clean_env(), cwd=REPO, timeout=60, check=True)
    assert done.stdout.count("evil") == 2 * len(CLASSES)
    assert raw(done.stdout) == [], done.stdout
    assert done.stdout.count("\n") == 1
    if log_format == "json":
        assert json.loads(done.stdout)["name_0"].startswith("evil")
