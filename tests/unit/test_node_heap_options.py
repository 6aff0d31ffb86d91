"""Node heap snapshots: when they are allowed, and NODE_OPTIONS only ever extended."""

from __future__ import annotations

from pathlib import Path

import psutil

from daemon.config.parse import parse_config_text
from daemon.runtime.tick import node_heap_for
from daemon.wrap.telemetry_env import child_environment

WATCH = '[[watch]]\nname = "w"\npid = 1\n'


def test_node_options_appended_to_the_users() -> None:
    """The user's NODE_OPTIONS stay first; our flags follow; without heap_dir nothing changes."""
    env = child_environment({"NODE_OPTIONS": "--max-old-space-size=64"}, None, 5, "id",
                            "/s/heap-snapshots")
    assert env["NODE_OPTIONS"] == ("--max-old-space-size=64 --heapsnapshot-signal=SIGUSR2 "
                                   "--diagnostic-dir=/s/heap-snapshots")
    assert "NODE_OPTIONS" not in child_environment({}, None, 5, "id")


def test_heap_needs_the_option_and_a_wrapped_tree() -> None:
    """Off by default; on only for a wrapped tree of a watch that asks; each 'no' says why."""
    total = psutil.virtual_memory().total
    off = parse_config_text(WATCH, "<t>", {}, total).watches[0]
    on = parse_config_text(WATCH + "evidence_node_heap = true\n", "<t>", {}, total).watches[0]
    folder = Path("/s/heap-snapshots")
    assert not off.evidence_node_heap
    assert "off" in node_heap_for(off, True, folder).why_not
    assert node_heap_for(on, False, folder).folder is None
    assert "wrap" in node_heap_for(on, False, folder).why_not
    assert node_heap_for(on, True, folder).folder == folder
    assert node_heap_for(None, True, folder).folder is None
