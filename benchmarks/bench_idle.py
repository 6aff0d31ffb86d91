"""Idle cost: telemetryd at its default config vs monit doing the same job, side by side.

Both watch the same 50 process trees (``sh`` + ``sleep``) at a 1 s interval: telemetryd
with its default settings (OTLP receiver and ``/metrics`` on, on ephemeral loopback
ports) and one ``[[watch]]`` per process; monit 5.x with one ``check process`` per
process and ``totalmem`` + ``totalcpu`` rules.  Both run at the same time for the same
window (after a warm-up), and each one's CPU is read from ``/proc/PID/stat`` (utime +
stime, children included).  Prints both figures and the ratio (target: <= 1.0).

monit comes from the Debian packages: installed here with apt-get if it is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._procs import ProcessGroup, spawn_trees

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def ensure_monit() -> str:
    """The monit binary, installed from the Debian packages if missing."""
    found = shutil.which("monit")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env,
                   stdin=subprocess.DEVNULL)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "monit"], check=True, env=env, stdin=subprocess.DEVNULL)
    found = shutil.which("monit")
    if not found:
        raise RuntimeError("monit is not installed and could not be installed")
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its reaped children, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / TICKS_PER_SECOND


def monit_config(work: Path, pidfiles: list[Path]) -> Path:
    # A pidfile of its own: with the default one, a monit already running on the machine
    # (another run of this benchmark) makes this one exit at once.
    lines = ["set daemon 1", f"set logfile {work / 'monit.log'}",
             f"set pidfile {work / 'monit.pid'}",
             f"set idfile {work / 'monit.id'}", f"set statefile {work / 'monit.state'}", ""]
    for index, pidfile in enumerate(pidfiles):
        lines += [f"check process tree{index} with pidfile {pidfile}",
                  "    if totalmem > 1 GB then alert",
                  "    if totalcpu > 90% then alert", ""]
    path = work / "monitrc"
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def telemetryd_config(work: Path, roots: list[int]) -> Path:
    watches = "".join(f'[[watch]]\nname = "tree{index}"\npid = {pid}\n'
                      for index, pid in enumerate(roots))
    path = work / "telemetryd.toml"
    path.write_text(f'[daemon]\ninterval = 1.0\nstate_dir = "{work / "state"}"\n'
                    'log_level = "warning"\n'
                    '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
                    + watches)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="measurement window (after the warm-up)")
    parser.add_argument("--warmup", type=float, default=10.0)
    args = parser.parse_args()
    monit = ensure_monit()
    group = ProcessGroup()
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        roots = spawn_trees(group, args.processes, "bench-idle")
        pidfiles = []
        for index, pid in enumerate(roots):
            pidfile = work / f"tree{index}.pid"
            pidfile.write_text(f"{pid}\n")
            pidfiles.append(pidfile)
        repo = Path(__file__).resolve().parents[1]
        daemon = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(telemetryd_config(work, roots)),
             "run"], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        daemons.append(daemon)
        watcher = subprocess.Popen([monit, "-I", "-c", str(monit_config(work, pidfiles))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        daemons.append(watcher)
        time.sleep(args.warmup)  # start-up (imports, first ticks) is not idle cost
        for proc in daemons:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited early ({proc.returncode})")
        before = [cpu_seconds(proc.pid) for proc in daemons]
        started = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - started
        after = [cpu_seconds(proc.pid) for proc in daemons]
    finally:
        for proc in daemons:
            proc.terminate()
        for proc in daemons:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        group.kill_all()
        shutil.rmtree(work, ignore_errors=True)
    ours, theirs = ((a - b) / elapsed * 100 for a, b in zip(after, before, strict=True))
    print(f"idle cost, {args.processes} watched processes at 1 s, {elapsed:.0f} s window:")
    print(f"  telemetryd (default config, receiver and /metrics on): {ours:.2f} % of a core")
    print(f"  monit (totalmem + totalcpu rules):                      {theirs:.2f} % of a core")
    ratio = ours / theirs if theirs > 0 else float("inf")
    print(f"  CPU ratio telemetryd / monit: {ratio:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
