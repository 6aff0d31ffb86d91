"""Idle cost: what a user pays for telemetryd at its default config, beside monit, same run.

Fifty trees (a shell and its sleeping child), the shells started through a symlink to
``/bin/sh`` named ``tdidle-<hex>`` so the kernel names them after it. Side by side, at a
1 s interval, over the same windows:

- **telemetryd (user)**: the embedded default config (its agent watches, the OTLP
  receiver and ``/metrics`` on, here on ephemeral loopback ports) plus one watch
  ``process_name = "tdidle-<hex>"``: what a user who watches agents by name pays. Every
  process on the machine is matched against the default watches (names, exe paths,
  interpreter command lines), not only the fifty.
- **telemetryd (pids)**, the previous benchmark's shape (``--no-pids`` leaves it out):
  one ``[[watch]] pid = N`` per tree and nothing else, as monit's pidfiles. No process
  needs more than its stat line, so this is a lower bound, not what a user pays.
- **monit** 5.x: one ``check process`` with a pidfile per tree, ``totalmem`` and
  ``totalcpu`` rules.

CPU is utime + stime (reaped children included) from ``/proc/PID/stat`` at the start and
end of each window; ``--runs`` windows follow one another after the warm-up. Prints each
window's figures and the ratio telemetryd (user) / monit (target: <= 1.0).

The other processes on the machine weigh on both, and not alike: monit reads more per
process than telemetryd, telemetryd has the larger fixed cost per tick. On a busy shared
machine (hundreds of test processes) the ratio looks better than on a quiet one.
``--own-table`` runs the whole benchmark in a pid namespace of its own (``unshare --pid
--fork --mount-proc``, root), where the process table holds only the trees, the daemons and
monit, as on a quiet machine (the CPU is still shared with whatever else runs).

monit comes from the Debian packages: installed here with apt-get if it is missing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._procs import ProcessGroup, spawn_trees
from daemon.config.files.embedded import DEFAULT_CONFIG_TOML
from daemon.status.snapshot import StatusSnapshot, StatusUnreadableError
from daemon.status.status_file import read_snapshot

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]


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


def daemon_table(state_dir: Path) -> str:
    """The [daemon] table and both listeners on (ephemeral loopback ports)."""
    return (f'[daemon]\ninterval = 1.0\nstate_dir = "{state_dir}"\nlog_level = "warning"\n'
            '[otlp]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n')


def user_config(work: Path, name: str) -> Path:
    """The embedded default's watches plus one watch of the trees by name."""
    path = work / "user.toml"
    path.write_text(DEFAULT_CONFIG_TOML + f'\n[[watch]]\nname = "trees"\nprocess_name = "{name}"\n'
                    + daemon_table(work / "state-user"))
    return path


def pids_config(work: Path, roots: list[int]) -> Path:
    """One watch per tree root by pid, nothing else (the previous benchmark's shape)."""
    watches = "".join(f'[[watch]]\nname = "tree{index}"\npid = {pid}\n'
                      for index, pid in enumerate(roots))
    path = work / "pids.toml"
    path.write_text(watches + daemon_table(work / "state-pids"))
    return path


def status_of(state_dir: Path) -> StatusSnapshot | None:
    """The daemon's status snapshot, or None while there is none."""
    try:
        return read_snapshot(state_dir / "status.json")
    except StatusUnreadableError:
        return None


def wait_for_trees(state_dir: Path, watch: str, count: int, timeout_seconds: float) -> int:
    """Wait until the daemon lists ``count`` trees of two members under ``watch``."""
    deadline = time.monotonic() + timeout_seconds
    seen = 0
    while time.monotonic() < deadline:
        snapshot = status_of(state_dir)
        for status in snapshot.watches if snapshot else ():
            if status.name == watch:
                seen = sum(1 for proc in status.processes if proc.members == 2)
        if seen == count:
            return seen
        time.sleep(0.2)
    raise RuntimeError(f"the daemon lists {seen} of {count} trees under {watch!r}")


def process_count() -> int:
    """Processes on the machine now (what a process-table scan reads)."""
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


@dataclass
class Contender:
    """One measured process: a label and its pid."""

    label: str
    proc: subprocess.Popen[bytes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0, help="length of one window")
    parser.add_argument("--runs", type=int, default=3, help="windows, one after the other")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--no-pids", action="store_true",
                        help="leave out the one-watch-per-pid daemon")
    parser.add_argument("--own-table", action="store_true",
                        help="run in a pid namespace of its own (a quiet machine's table)")
    args = parser.parse_args()
    if args.own_table and os.environ.get("BENCH_IDLE_IN_NAMESPACE") != "1":
        argv = [arg for arg in sys.argv[1:] if arg != "--own-table"]
        os.execvpe("unshare", ["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                               str(Path(__file__).resolve()), *argv],
                   {**os.environ, "BENCH_IDLE_IN_NAMESPACE": "1"})
    monit = ensure_monit()
    group = ProcessGroup()
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    name = f"tdidle-{secrets.token_hex(2)}"
    contenders: list[Contender] = []
    rows: list[list[float]] = []
    try:
        shell = work / name
        shell.symlink_to("/bin/sh")
        roots = spawn_trees(group, args.processes, name, shell=str(shell))
        pidfiles = []
        for index, pid in enumerate(roots):
            pidfile = work / f"tree{index}.pid"
            pidfile.write_text(f"{pid}\n")
            pidfiles.append(pidfile)
        configs = [("telemetryd (user)", user_config(work, name))]
        if not args.no_pids:
            configs.append(("telemetryd (pids)", pids_config(work, roots)))
        for label, config in configs:
            proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(config),
                                     "run"], cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            contenders.append(Contender(label, proc))
        watcher = subprocess.Popen([monit, "-I", "-c", str(monit_config(work, pidfiles))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        contenders.append(Contender("monit", watcher))
        wait_for_trees(work / "state-user", "trees", args.processes, 60.0)
        time.sleep(args.warmup)  # start-up (imports, first identity reads) is not idle cost
        where = ("in its own pid namespace" if os.environ.get("BENCH_IDLE_IN_NAMESPACE")
                 else "on the machine")
        print(f"idle cost, {args.processes} watched trees at 1 s, {process_count()} processes "
              f"{where}, load {os.getloadavg()[0]:.2f}:")
        print("  window  " + "  ".join(f"{c.label:>18}" for c in contenders)
              + "   user/monit")
        for run in range(args.runs):
            for contender in contenders:
                if contender.proc.poll() is not None:
                    raise RuntimeError(f"{contender.label} exited early "
                                       f"({contender.proc.returncode})")
            before = [cpu_seconds(c.proc.pid) for c in contenders]
            started = time.monotonic()
            time.sleep(args.seconds)
            elapsed = time.monotonic() - started
            after = [cpu_seconds(c.proc.pid) for c in contenders]
            row = [(a - b) / elapsed * 100 for a, b in zip(after, before, strict=True)]
            rows.append(row)
            ratio = row[0] / row[-1] if row[-1] > 0 else float("inf")
            print(f"  {run + 1:>4}    " + "  ".join(f"{v:>16.2f} %" for v in row)
                  + f"   {ratio:>10.2f}")
    finally:
        for contender in contenders:
            contender.proc.terminate()
        for contender in contenders:
            try:
                contender.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                contender.proc.kill()
                contender.proc.wait()
        group.kill_all()
        shutil.rmtree(work, ignore_errors=True)
    # Over all windows, one line per process (bench_against.py reads these lines).
    means = [sum(row[i] for row in rows) / len(rows) for i in range(len(contenders))]
    shapes = {"telemetryd (user)": "default config + a watch by name",
              "telemetryd (pids)": "one watch per pid"}
    for contender, mean in zip(contenders, means, strict=True):
        label = contender.label.split(" (")[0]
        shape = shapes.get(contender.label, "totalmem + totalcpu rules")
        print(f"  {label} ({shape}): {mean:.2f} % of a core")
    ratio = means[0] / means[-1] if means[-1] > 0 else float("inf")
    print(f"  CPU ratio telemetryd / monit: {ratio:.2f} (target <= 1.0; telemetryd as a "
          "user runs it, over all windows)")


if __name__ == "__main__":
    main()
