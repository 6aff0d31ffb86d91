"""What the behaviour guard costs: the tick with the guard on against off, and the RSS.

Run ``python benchmarks/bench_guard.py [--trees 50] [--pairs 600] [--sessions 2000]``
(``--quick``: a smoke run whose figures are not judged).

1. Tick: N real trees (``sh`` + ``sleep``), two real in-process ``Service``s watching them,
   one with ``[guard] enabled = true`` (the default), one with ``enabled = false``; their
   ticks interleaved (order alternating) in this one run. The ratio of medians (CPU time of
   this thread, and wall) is the guard's cost on the tick. Target: <= 1.1x.
2. RSS: two real daemons (``python -m daemon run``), guard on and off, watching the same N
   trees at ``interval = 0.5``, both fed the same real-shaped OTLP (Claude Code's captured
   log events moved to ``--sessions`` session ids, so the guard's per-session state fills
   up). RSS of each after the same number of ticks. Target: within 5 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from _procs import ProcessGroup, spawn_trees  # noqa: E402

from daemon.config.parse import parse_config_text  # noqa: E402
from daemon.runtime.service import Service  # noqa: E402
from daemon.system.logs import configure_logging  # noqa: E402
from tests.support.guard_otlp import PROTOBUF, with_session  # noqa: E402

MiB = 1024 * 1024
TARGET_RATIO = 1.1
TARGET_RSS_BYTES = 5 * MiB

CONFIG = """
[daemon]
interval = {interval}
state_dir = "{state_dir}"
log_format = "json"
log_level = "warning"
[otlp]
{otlp}
[metrics]
enabled = false
[guard]
enabled = {enabled}
[[watch]]
name = "bench-trees"
cmdline = "{marker}-[0-9]+$"
include_children = true
rss_warning = "64GiB"
rss_critical = "128GiB"
cpu_warning = 5000
cpu_critical = 10000
"""


def say(text: str) -> None:
    """Progress and figures on stdout, flushed."""
    print(text, flush=True)


def config_text(state_dir: Path, marker: str, enabled: bool, interval: float = 1.0,
                otlp: str = "enabled = false") -> str:
    """The TOML both runs use, but for ``[guard] enabled``."""
    return CONFIG.format(interval=interval, state_dir=state_dir, marker=marker,
                         enabled="true" if enabled else "false", otlp=otlp)


@contextlib.contextmanager
def driven(text: str) -> Iterator[Service]:
    """A Service started for real whose scheduler is stopped, so the caller drives ticks."""
    service = Service(parse_config_text(text, "<bench>", {}, psutil.virtual_memory().total))
    service.startup()
    try:
        deadline = time.monotonic() + 30
        while service.tick_count < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("no first tick")
            time.sleep(0.02)
        assert service.running is not None and service.running.scheduler is not None
        service.running.scheduler.shutdown(wait=True)
        service.running.scheduler = None
        yield service
    finally:
        service.shutdown()


def timed(call: Callable[[], object], wall: list[float], cpu: list[float]) -> None:
    """Time one call: wall (perf_counter) and this thread's CPU."""
    w, c = time.perf_counter(), time.thread_time()
    call()
    cpu.append(time.thread_time() - c)
    wall.append(time.perf_counter() - w)


def tick_ratio(root: Path, marker: str, trees: int, pairs: int) -> dict[str, float]:
    """Interleaved ticks of a guarded and an unguarded Service over the same trees."""
    on_wall: list[float] = []
    on_cpu: list[float] = []
    off_wall: list[float] = []
    off_cpu: list[float] = []
    with driven(config_text(root / "on", marker, True)) as on, \
            driven(config_text(root / "off", marker, False)) as off:
        for _ in range(20):
            on.tick()
            off.tick()
        seen = len(on.ticker.monitor.tracked), len(off.ticker.monitor.tracked)
        if seen != (trees, trees):
            raise RuntimeError(f"expected {trees} trees in each, saw {seen}")
        for index in range(pairs):
            if index % 2:
                timed(off.tick, off_wall, off_cpu)
                timed(on.tick, on_wall, on_cpu)
            else:
                timed(on.tick, on_wall, on_cpu)
                timed(off.tick, off_wall, off_cpu)
    return {"on_cpu_ms": statistics.median(on_cpu) * 1000,
            "off_cpu_ms": statistics.median(off_cpu) * 1000,
            "on_wall_ms": statistics.median(on_wall) * 1000,
            "off_wall_ms": statistics.median(off_wall) * 1000,
            "ratio_cpu": statistics.median(on_cpu) / statistics.median(off_cpu),
            "ratio_wall": statistics.median(on_wall) / statistics.median(off_wall)}


def free_port() -> int:
    """A loopback port free now (the daemons bind it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_ticks(state_dir: Path) -> int:
    """Ticks the daemon reported in its status file (0 before the first)."""
    try:
        data = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return 0
    return int((data.get("last_tick") or {}).get("count") or 0)


def post(port: int, body: bytes) -> None:
    """One OTLP logs request."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/logs", data=body,
                                     headers={"Content-Type": PROTOBUF}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()


def rss_pair(group: ProcessGroup, root: Path, marker: str, sessions: int,
             ticks: int) -> dict[str, float]:
    """RSS of a guarded and an unguarded daemon fed the same telemetry, same tick count."""
    daemons = {}
    for name, enabled in (("on", True), ("off", False)):
        state = root / f"daemon-{name}"
        port = free_port()
        path = root / f"{name}.toml"
        path.write_text(config_text(state, marker, enabled, 0.5,
                                    f'listen = "127.0.0.1:{port}"\ntrust = "any"'))
        env = {k: v for k, v in os.environ.items()
               if k not in ("TELEMETRYD_CONFIG", "SENTRY_DSN", "STATE_DIRECTORY",
                            "NOTIFY_SOCKET")}
        proc = group.spawn([sys.executable, "-m", "daemon", "--config", str(path), "run"],
                           env=env, cwd=REPO)
        daemons[name] = (proc, state, port)
    deadline = time.monotonic() + 60
    while not all(status_ticks(state) >= 2 for _, state, _ in daemons.values()):
        if time.monotonic() > deadline:
            raise RuntimeError("daemons did not start")
        time.sleep(0.1)
    bodies = [with_session("claude-print-logs.pb", f"bench-{n}") for n in range(sessions)]
    for body in bodies:
        for _, _, port in daemons.values():
            post(port, body)
    start = {name: status_ticks(state) for name, (_, state, _) in daemons.items()}
    deadline = time.monotonic() + ticks * 2 + 60
    while not all(status_ticks(state) >= start[name] + ticks
                  for name, (_, state, _) in daemons.items()):
        if time.monotonic() > deadline:
            raise RuntimeError("daemons stopped ticking")
        time.sleep(0.2)
    found = {name: psutil.Process(proc.pid).memory_info().rss
             for name, (proc, _, _) in daemons.items()}
    for proc, _, _ in daemons.values():
        proc.terminate()
        proc.wait(timeout=30)
        group.forget(proc)
    return {"on_rss_mib": found["on"] / MiB, "off_rss_mib": found["off"] / MiB,
            "delta_mib": (found["on"] - found["off"]) / MiB}


def main() -> int:
    """Run both measurements and print figures, ratios and the verdict against targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--rss-ticks", type=int, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run (5 trees, 40 pairs, 20 sessions): figures not judged")
    args = parser.parse_args()
    if args.quick:
        args.trees, args.pairs, args.sessions, args.rss_ticks = 5, 40, 20, 2
    configure_logging("json", "warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    marker = f"tdguard-{uuid.uuid4().hex[:6]}"
    group = ProcessGroup()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-guard-") as tmp:
            root = Path(tmp)
            spawn_trees(group, args.trees, marker)
            say(f"{args.trees} trees; {args.pairs} interleaved tick pairs (guard on / off)")
            ticks = tick_ratio(root, marker, args.trees, args.pairs)
            say(f"tick, median CPU: guard on {ticks['on_cpu_ms']:.3f} ms, off "
                f"{ticks['off_cpu_ms']:.3f} ms, ratio {ticks['ratio_cpu']:.3f}x "
                f"(target <= {TARGET_RATIO}x)")
            say(f"tick, median wall: guard on {ticks['on_wall_ms']:.3f} ms, off "
                f"{ticks['off_wall_ms']:.3f} ms, ratio {ticks['ratio_wall']:.3f}x")
            say(f"RSS: two daemons, {args.sessions} sessions of Claude Code events each, "
                f"after {args.rss_ticks} more ticks")
            rss = rss_pair(group, root, marker, args.sessions, args.rss_ticks)
            say(f"RSS: guard on {rss['on_rss_mib']:.1f} MiB, off {rss['off_rss_mib']:.1f} MiB,"
                f" delta {rss['delta_mib']:+.1f} MiB (target within "
                f"{TARGET_RSS_BYTES / MiB:.0f} MiB)")
            ok = (ticks["ratio_cpu"] <= TARGET_RATIO
                  and abs(rss["delta_mib"]) * MiB <= TARGET_RSS_BYTES)
            if args.quick:
                say("guard cost: not judged (--quick)")
                return 0
            say("guard cost: " + ("within targets" if ok else "OVER TARGET"))
            return 0 if ok else 1
    finally:
        group.kill_all()


if __name__ == "__main__":
    sys.exit(main())
