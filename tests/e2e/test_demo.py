"""`telemetryd demo` shows the whole cycle to a newcomer with no agent installed."""

from __future__ import annotations

from tests.support.daemon_proc import cli


def test_demo_goes_through_warning_critical_and_shows_the_report():
    """The demo logs a warning and a critical, writes a report and prints it."""
    result = cli("demo", timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.index("threshold.warning") < out.index("threshold.critical") < out.index(
        "report.written")
    assert "telemetryd reports show" in out
    assert '"kind": "rss_critical"' in out and "crossed critical" in out
