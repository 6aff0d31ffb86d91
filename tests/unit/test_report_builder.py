"""The pure report builder: a crossing in, a Sentry event with redacted process facts out."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from crash_reports.event.evidence import Evidence
from crash_reports.event.kinds import ReportKind
from crash_reports.event.redact import REDACTED
from crash_reports.event.report import KINDS, ReportInput, build_report, sanitize_process

GIB = 1024**3
SECRET = "Zq7sEcReTvAlUe42"


def report_input(**changes: Any) -> ReportInput:
    """A realistic rss_critical crossing, with secrets in the process's command line and env."""
    if changes.get("kind") in KINDS:  # a known kind's value stands for the kind
        changes["kind"] = ReportKind(changes["kind"])
    base = ReportInput(
        kind=ReportKind.RSS_CRITICAL,
        watch="claude-code",
        host="devbox",
        version="0.1.0",
        at=1_700_000_000.25,
        pid=4242,
        process_name="claude",
        create_time=1_699_990_000.0,
        process={
            "pid": 4242,
            "ppid": 1,
            "name": "claude",
            "exe": "/usr/bin/claude",
            "cmdline": ["claude", "--api-key", SECRET, f"--token={SECRET}",
                        f"ANTHROPIC_API_KEY={SECRET}", "--model", "opus"],
            "cwd": "/home/a/src",
            "user": "a",
            "environ": {"ANTHROPIC_API_KEY": SECRET},
            "env": {"X": SECRET},
        },
        tree={"rss_bytes": int(3.2 * GIB), "cpu_percent": 50.0, "members": 3},
        thresholds={"rss_warning_bytes": GIB, "rss_critical_bytes": 3 * GIB},
        value=3.2 * GIB,
        level_value=3 * GIB,
        trend={"rate_bytes_per_min": 1e8, "eta_seconds": 125.0},
        system={"memory_total_bytes": 16 * GIB},
        samples=[{"at": 1.0, "rss_bytes": 100}, {"at": 2.0, "rss_bytes": 200}],
    )
    return dataclasses.replace(base, **changes)


def all_keys(value: Any) -> set[str]:
    """Every mapping key anywhere in a nested structure."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list | tuple):
        return {k for v in value for k in all_keys(v)}
    return set()


def test_event_shape() -> None:
    """The event is fatal, titled for people, tagged and fingerprinted per watch and kind."""
    report = build_report(report_input())
    assert report.event["level"] == "fatal"
    assert report.title == "claude-code pid 4242: RSS 3.2 GiB crossed critical 3.0 GiB"
    assert report.event["message"] == report.title
    assert report.event["event_id"] == report.event_id
    assert len(report.event_id) == 32 and int(report.event_id, 16) >= 0
    assert report.event["timestamp"] == 1_700_000_000.25
    assert report.event["release"] == "telemetryd@0.1.0"
    assert report.fingerprint == ["telemetryd", "claude-code", "rss_critical"]
    assert report.tags == {"watch": "claude-code", "kind": "rss_critical",
                           "process_name": "claude", "host": "devbox",
                           "telemetryd_version": "0.1.0"}
    assert set(report.contexts) >= {"process", "process_tree", "thresholds", "trend", "system",
                                    "crossing"}
    assert report.contexts["trend"]["eta_human"] == "2m05s"
    assert report.contexts["crossing"]["level"] == 3 * GIB


def test_cmdline_is_redacted_and_environment_dropped() -> None:
    """The process context carries the redacted cmdline and no environ anywhere in the report."""
    report = build_report(report_input())
    process = report.contexts["process"]
    assert process["cmdline"] == ["claude", "--api-key", REDACTED, f"--token={REDACTED}",
                                  f"ANTHROPIC_API_KEY={REDACTED}", "--model", "opus"]
    everything = json.dumps([report.event, report.tags, report.contexts, report.fingerprint])
    everything += b"".join(a.data for a in report.attachments).decode()
    assert SECRET not in everything
    assert "environ" not in all_keys(report.contexts) and "env" not in all_keys(report.contexts)
    assert "environ" not in all_keys(report.event)


def test_cmdline_as_one_string_is_redacted() -> None:
    """A command line given as one string is redacted too."""
    process = {"cmdline": f"claude --api-key {SECRET} Authorization: Bearer {SECRET}"}
    clean = sanitize_process(process)
    assert SECRET not in clean["cmdline"]
    assert process["cmdline"].count(SECRET) == 2  # the input is not modified


def test_event_id_is_stable_per_crossing_and_differs_between_crossings() -> None:
    """The same crossing keeps its event id; another kind, pid, start or moment gets a new one."""
    first = build_report(report_input()).event_id
    assert build_report(report_input()).event_id == first
    others = {
        build_report(report_input(kind="cpu_critical")).event_id,
        build_report(report_input(pid=4243)).event_id,
        build_report(report_input(create_time=1.0)).event_id,
        build_report(report_input(at=1_700_000_001.0)).event_id,
        build_report(report_input(host="other")).event_id,
    }
    assert first not in others and len(others) == 5


def test_titles_per_kind() -> None:
    """CPU and exited-under-pressure reports have their own human titles."""
    cpu = build_report(report_input(kind="cpu_critical", value=412.4, level_value=350.0))
    assert cpu.title == "claude-code pid 4242: CPU 412% crossed critical 350%"
    exited = build_report(report_input(kind="exited_under_pressure", value=None,
                                       level_value=None,
                                       evidence=Evidence(level="critical", oom_kill_total=4,
                                                         oom_kill_delta=1)))
    assert exited.title == ("claude-code pid 4242 exited under pressure (critical) at RSS 3.2 GiB"
                            " (kernel OOM killer fired)")
    assert exited.contexts["crossing"]["oom_kill_delta"] == 1
    assert exited.fingerprint == ["telemetryd", "claude-code", "exited_under_pressure"]


def test_samples_attachment() -> None:
    """The last samples travel as a JSON attachment."""
    (attachment,) = build_report(report_input()).attachments
    assert attachment.filename == "samples.json"
    assert attachment.content_type == "application/json"
    body = json.loads(attachment.data)
    assert body == {"watch": "claude-code", "pid": 4242,
                    "samples": [{"at": 1.0, "rss_bytes": 100}, {"at": 2.0, "rss_bytes": 200}]}


def test_optional_contexts() -> None:
    """Agent and watch-stats contexts appear only when given."""
    plain = build_report(report_input())
    assert "agent" not in plain.contexts and "watch_stats" not in plain.contexts
    rich = build_report(report_input(agent={"model": "opus"}, stats={"reports": 2}))
    assert rich.contexts["agent"] == {"model": "opus"}
    assert rich.contexts["watch_stats"] == {"reports": 2}


def test_unknown_kind_is_refused() -> None:
    """Only the known report kinds can be built."""
    assert set(KINDS) == {"rss_critical", "cpu_critical", "exited_under_pressure",
                          "child_oom_killed", "orphans_left", "killed", "fork_storm",
                          "tool_loop", "error_storm", "cost_surge", "idle_spin",
                          "version_regression"}
    with pytest.raises(ValueError, match="unknown report kind"):
        build_report(report_input(kind="disk_full"))


def test_child_oom_title_names_the_child_and_the_tree_size_before() -> None:
    """A child killed by the OOM killer is named, with the tree's RSS before it died."""
    report = build_report(report_input(
        kind="child_oom_killed", value=None, level_value=None,
        evidence=Evidence(gone_pids=(4250,), rss_bytes_before=3 * 1024**3, level="critical",
                          oom_kill_total=4, oom_kill_delta=1)))
    assert report.title.endswith(
        ": child 4250 killed by the kernel OOM killer at tree RSS 3.0 GiB (critical)")
    assert report.fingerprint[-1] == "child_oom_killed"
