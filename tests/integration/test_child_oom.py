"""A child killed inside a watched tree under pressure, while the OOM counter moves, is reported."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
from sentry_sdk.envelope import Envelope

from crash_reports.event.system_facts import SystemFacts
from daemon.config.parse import parse_config_text
from daemon.runtime.service import Service
from tests.support.agents import Agent
from tests.support.waiting import wait_for


class OomCounter(SystemFacts):
    """Real system facts, but the kernel's oom_kill counter is ours to move (fault injection:
    a test cannot safely make the real OOM killer strike)."""

    def __init__(self) -> None:
        super().__init__()
        self.kills = 7

    def oom_kill_count(self) -> int | None:
        return self.kills


def test_child_killed_while_oom_counter_moves_is_reported(tmp_path: Path) -> None:
    """The agent survives, its child is SIGKILLed as the OOM killer would: one report."""
    facts = OomCounter()
    with Agent() as agent:
        agent.command("child 40")
        base = agent.rss_bytes() // (1024 * 1024)
        config = parse_config_text(
            f'[daemon]\ninterval = 0.1\nstate_dir = "{tmp_path}"\n'
            '[otlp]\nenabled = false\n[metrics]\nenabled = false\n'
            f'[[watch]]\nname = "tree"\npid = {agent.pid}\nrss_warning = "{base + 20}MiB"\n'
            f'rss_critical = "{base + 400}MiB"\nsustained = 1\n',
            "<test>", {}, psutil.virtual_memory().total)
        service = Service(config, system_facts=facts)
        service.startup()
        try:
            def tracked_at_warning():
                for tracked in service.ticker.monitor.tracked.values():
                    if tracked.level.label == "warning" and tracked.last.member_pids:
                        return tracked
                return None
            tracked = wait_for(tracked_at_warning, message="tree at warning with its child")
            [child] = tracked.last.member_pids
            wait_for(lambda: service.tick_count >= 3, message="the OOM baseline read")
            facts.kills += 1
            os.kill(child, signal.SIGKILL)
            entry = wait_for(lambda: [e for e in service.running.spool.pending()
                                      if e.kind == "child_oom_killed"],
                             message="child_oom_killed report")[0]
            event = Envelope.deserialize(service.running.spool.read(entry.id)).get_event()
        finally:
            service.shutdown()
    assert event is not None
    assert f"child {child} killed by the kernel OOM killer" in event["message"]
    assert event["contexts"]["crossing"]["oom_kill_delta"] == 1
    assert event["contexts"]["crossing"]["gone_pids"] == [child]
    assert event["fingerprint"] == ["telemetryd", "tree", "child_oom_killed"]
