"""The embedded default against every recorded install layout of every supported agent.

tests/fixtures/process_shapes.json holds the process shapes (name, exe, argv, parent) of
each agent in each layout, recorded on Linux with psutil or read from the packages'
code (each with its source); a selector change that loses one fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.config.files.embedded import DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT
from daemon.config.parse import parse_config_text
from daemon.config.schema import WatchRule
from daemon.watch.proc.proctable import ProcStat
from daemon.watch.proc.selection import ProcessIdentity, rule_matches_static
from daemon.watch.proc.versions import agent_version

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "process_shapes.json")
                     .read_text(encoding="utf-8"))
SHAPES: list[dict[str, Any]] = FIXTURE["shapes"]
NEGATIVES: list[dict[str, Any]] = FIXTURE["negatives"]
RULES = parse_config_text(DEFAULT_CONFIG_TOML, EMBEDDED_DEFAULT, {}, 16 * 1024**3).watches


def first_watch(shape: dict[str, Any], rules: tuple[WatchRule, ...] = RULES) -> str | None:
    """The watch a process of this shape belongs to (the first that matches), if any."""
    comm = shape.get("comm") or shape["name"][:15]
    stat = ProcStat(4242, 1, comm, "S", 0.0, 1024, 1, 1)
    identity = ProcessIdentity(tuple(shape["cmdline"]), shape.get("exe"), None)
    for rule in rules:
        if rule_matches_static(rule, stat, identity):
            return rule.name
    return None


def _id(shape: dict[str, Any]) -> str:
    return f"{shape['agent']}/{shape['platform']}/{shape['layout']}"


@pytest.mark.parametrize("shape", SHAPES, ids=_id)
def test_every_recorded_layout_is_found_by_its_agents_watch(shape: dict[str, Any]) -> None:
    """Each recorded shape belongs to its agent's watch; pass-through shells to none."""
    expected = shape["agent"] if shape["expect_match"] else None
    assert first_watch(shape) == expected, shape["source"]


@pytest.mark.parametrize("negative", NEGATIVES, ids=lambda n: n["label"])
def test_look_alikes_are_not_matched(negative: dict[str, Any]) -> None:
    """Node/python apps, pressly goose, an editor on the claude symlink, ...: no watch."""
    assert first_watch(negative) is None


def test_one_watch_per_agent_and_every_recorded_agent_has_one() -> None:
    """The default names one watch per agent, for every agent the fixtures record."""
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert {shape["agent"] for shape in SHAPES} <= set(names)


def test_the_version_named_native_binary_is_found_with_its_version() -> None:
    """A native Claude Code started by its version path is named 2.1.197: found, version read."""
    shape = {"name": "2.1.197", "exe": "/home/user/.local/share/claude/versions/2.1.197",
             "cmdline": ["/home/user/.local/share/claude/versions/2.1.197"]}
    assert first_watch(shape) == "claude-code"
    assert agent_version(shape["name"], shape["exe"], shape["cmdline"]) == "2.1.197"


@pytest.mark.parametrize(("name", "exe", "cmdline", "version"), [
    ("claude", "/home/user/.local/share/claude/versions/2.1.197", ["claude"], "2.1.197"),
    ("claude.exe", "/home/user/.local/share/pnpm/global/5/.pnpm/@anthropic-ai+claude-code@"
     "2.1.197/node_modules/@anthropic-ai/claude-code/bin/claude.exe", ["claude"], "2.1.197"),
    ("codex", "/home/user/.codex/packages/standalone/releases/0.171.0-x86_64-unknown-linux-"
     "musl/bin/codex", ["codex"], "0.171.0"),
    ("node", "/usr/bin/node", ["node", "/home/user/.local/share/pnpm/global/5/.pnpm/"
     "@openai+codex@0.171.0/node_modules/@openai/codex/bin/codex.js"], "0.171.0"),
    ("node", "/opt/homebrew/Cellar/node/24.4.1/bin/node", ["node", "/opt/homebrew/bin/gemini"],
     None),
    ("claude", "/home/user/.npm-global/lib/node_modules/@anthropic-ai/claude-code/bin/"
     "claude.exe", ["claude"], None),
])
def test_version_is_read_from_the_install_path_only(
        name: str, exe: str, cmdline: list[str], version: str | None) -> None:
    """The agent's version comes from its path; an interpreter's own version is never taken."""
    assert agent_version(name, exe, cmdline) == version
