"""Shipped service definitions: no drift from the renderer, accepted by systemd and plistlib."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from daemon.system.service_files import (
    SHIPPED_EXECUTABLE,
    render_launchd_plist,
    render_systemd_unit,
    shipped_files,
    unit_file_name,
    unit_text,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED_DIR = REPO / "systemd"
VERIFY_TIMEOUT_SECONDS = 120
REGENERATE_HINT = (
    "regenerate with: .venv/bin/python -c 'from pathlib import Path; "
    "from daemon.system.service_files import "
    'shipped_files; [Path("systemd", n).write_bytes(b) for n, b in shipped_files().items()]\''
)


def systemd_analyze() -> str:
    """Return the systemd-analyze path; fail loudly when absent unless told to skip."""
    found = shutil.which("systemd-analyze")
    if found is not None:
        return found
    if os.environ.get("TELEMETRYD_SKIP_SYSTEMD") == "1":
        pytest.skip("systemd-analyze not installed and TELEMETRYD_SKIP_SYSTEMD=1")
    pytest.fail(
        "systemd-analyze not found: install it (apt-get install -y --no-install-recommends "
        "systemd) or set TELEMETRYD_SKIP_SYSTEMD=1 to skip the unit checks"
    )


def verify_unit(unit_path: Path, user: bool, home: Path) -> list[str]:
    """Run systemd-analyze verify; return its complaints about the unit (empty when clean)."""
    runtime_dir = home / "runtime"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "SYSTEMD_LOG_COLOR": "0",
    }
    scope = ["--user"] if user else ["--system"]
    result = subprocess.run(
        [systemd_analyze(), *scope, "verify", "--man=no", str(unit_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=VERIFY_TIMEOUT_SECONDS,
        check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    # verify exits 0 on warnings such as an unknown key ("... ignoring."), so any line
    # naming the unit counts as a failure; lines about other units on the host do not.
    complaints = [line for line in lines if unit_path.name in line or str(unit_path) in line]
    if result.returncode != 0:
        complaints.append(f"exit status {result.returncode}: {lines}")
    return complaints


def make_executable(path: Path) -> Path:
    """Create a runnable stand-in for the telemetryd console script at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def write_unit(directory: Path, text: str) -> Path:
    """Write unit text where systemd-analyze can load it (the name must end in .service)."""
    directory.mkdir(parents=True, exist_ok=True)
    unit_path = directory / "telemetryd.service"
    unit_path.write_text(text)
    return unit_path


def directives(text: str) -> dict[tuple[str, str], list[str]]:
    """Parse unit text into (section, key) -> values, keeping repeats in order."""
    parsed: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        parsed.setdefault((section, key), []).append(value)
    return parsed


@pytest.mark.parametrize("name", sorted(shipped_files()))
def test_shipped_file_equals_rendered(name: str) -> None:
    """Each file in systemd/ is byte-for-byte what service_files renders for the default path."""
    assert (SHIPPED_DIR / name).read_bytes() == shipped_files()[name], REGENERATE_HINT


@pytest.mark.parametrize(
    ("name", "user"), [("telemetryd.service", False), ("telemetryd-user.service", True)]
)
def test_shipped_unit_passes_systemd_analyze_verify(name: str, user: bool, tmp_path: Path) -> None:
    """The shipped unit, with ExecStart pointed at a real file, verifies without a warning."""
    exe = make_executable(tmp_path / "bin" / "telemetryd")
    shipped = (SHIPPED_DIR / name).read_text()
    assert shipped.count(f"ExecStart={SHIPPED_EXECUTABLE} run") == 1
    unit_path = write_unit(tmp_path / "units", shipped.replace(SHIPPED_EXECUTABLE, str(exe)))
    assert verify_unit(unit_path, user=user, home=tmp_path) == []


@pytest.mark.parametrize("user", [False, True])
def test_rendered_unit_with_awkward_path_verifies(user: bool, tmp_path: Path) -> None:
    """A venv path with a space and a % is quoted so systemd finds exactly that file."""
    exe = make_executable(tmp_path / "my venv" / "100%h" / "telemetryd")
    unit_path = write_unit(tmp_path / "units", render_systemd_unit(str(exe), user=user))
    assert verify_unit(unit_path, user=user, home=tmp_path) == []


def test_verify_check_catches_warnings_and_missing_binary(tmp_path: Path) -> None:
    """The verify helper is not vacuous: an unknown key or a missing ExecStart both fail it."""
    exe = make_executable(tmp_path / "bin" / "telemetryd")
    good = render_systemd_unit(str(exe), user=False)
    unknown_key = good.replace("[Service]\n", "[Service]\nWatchdogSecs=30s\n")
    complaints = verify_unit(write_unit(tmp_path / "a", unknown_key), user=False, home=tmp_path)
    assert any("WatchdogSecs" in line for line in complaints), complaints
    missing = render_systemd_unit(str(tmp_path / "nowhere" / "telemetryd"), user=False)
    complaints = verify_unit(write_unit(tmp_path / "b", missing), user=False, home=tmp_path)
    assert any("nowhere" in line for line in complaints), complaints


@pytest.mark.parametrize("user", [False, True])
def test_units_carry_the_life_cycle_directives(user: bool) -> None:
    """Both units use the notify protocol, a watchdog, restart on failure and a state dir."""
    parsed = directives(render_systemd_unit(SHIPPED_EXECUTABLE, user=user))
    service = {key: values for (section, key), values in parsed.items() if section == "Service"}
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30s"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartSec"] == ["5s"]
    assert service["StateDirectory"] == ["telemetryd"]
    assert service["ExecStart"] == [f"{SHIPPED_EXECUTABLE} run"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["Environment"] == ["PYTHONUNBUFFERED=1"]
    assert service["MemoryMax"] == ["256M"]
    assert service["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    # Hiding other processes' /proc entries would blind the daemon.
    assert "ProtectProc" not in service
    assert "ProcSubset" not in service
    assert "PrivateUsers" not in service
    expected_target = "default.target" if user else "multi-user.target"
    assert parsed[("Install", "WantedBy")] == [expected_target]


def test_system_unit_keeps_only_the_capabilities_to_read_proc() -> None:
    """The system unit is sandboxed, OOM-protected, and keeps just ptrace-read and dac-read."""
    parsed = directives(render_systemd_unit(SHIPPED_EXECUTABLE, user=False))
    service = {key: values for (section, key), values in parsed.items() if section == "Service"}
    assert service["OOMScoreAdjust"] == ["-900"]
    assert service["CapabilityBoundingSet"] == ["CAP_SYS_PTRACE CAP_DAC_READ_SEARCH"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["ProtectHome"] == ["read-only"]
    for flag in ("PrivateTmp", "NoNewPrivileges", "ProtectKernelTunables"):
        assert service[flag] == ["yes"], flag


def test_user_unit_uses_an_oom_score_an_unprivileged_manager_can_set() -> None:
    """The user unit asks for no less than user@.service's own 100, which systemd can grant."""
    parsed = directives(render_systemd_unit(SHIPPED_EXECUTABLE, user=True))
    assert parsed[("Service", "OOMScoreAdjust")] == ["100"]
    assert ("Service", "CapabilityBoundingSet") not in parsed
    assert ("Service", "ProtectSystem") not in parsed


def test_shipped_plist_loads_and_keeps_the_agent_running() -> None:
    """The launchd plist parses and runs `telemetryd run` at load, restarted when it exits."""
    agent = plistlib.loads((SHIPPED_DIR / "dev.telemetryd.plist").read_bytes())
    assert agent["Label"] == "dev.telemetryd"
    assert agent["ProgramArguments"] == [SHIPPED_EXECUTABLE, "run"]
    assert agent["KeepAlive"] is True
    assert agent["RunAtLoad"] is True
    assert agent["ProcessType"] == "Background"
    assert agent["EnvironmentVariables"] == {"PYTHONUNBUFFERED": "1"}
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == "/tmp/telemetryd.log"


def test_plist_logs_under_the_users_library_when_home_is_known() -> None:
    """Given a home, the agent logs to ~/Library/Logs (launchd does not expand ~ itself)."""
    agent = plistlib.loads(render_launchd_plist("/opt/td/bin/telemetryd", home="/Users/ada/"))
    assert agent["StandardOutPath"] == "/Users/ada/Library/Logs/telemetryd.log"
    assert agent["ProgramArguments"] == ["/opt/td/bin/telemetryd", "run"]


def test_unit_text_dispatches_by_kind() -> None:
    """unit_text returns the system unit, the user unit and the plist for their kinds."""
    exe = "/opt/td/bin/telemetryd"
    assert unit_text("system", exe) == render_systemd_unit(exe, user=False)
    assert unit_text("user", exe) == render_systemd_unit(exe, user=True)
    assert unit_text("launchd", exe) == render_launchd_plist(exe)
    assert unit_text("system", exe) != unit_text("user", exe)
    assert unit_file_name("system") == unit_file_name("user") == "telemetryd.service"
    assert unit_file_name("launchd") == "dev.telemetryd.plist"


@pytest.mark.parametrize(
    ("kind", "executable", "message"),
    [
        ("system", "telemetryd", "absolute path"),
        ("user", "bin/telemetryd", "absolute path"),
        ("launchd", "./telemetryd", "absolute path"),
        ("system", "/opt/td\n[Service]\nExecStartPre=/bin/rm", "cannot take"),
        ("user", "/opt/td\ttab", "cannot take"),
        ("system", "/opt/$HOME/telemetryd", "cannot take"),
        ("user", '/opt/"td"/telemetryd', "cannot take"),
        ("system", "/opt/td\\bin/telemetryd", "cannot take"),
        ("initd", "/opt/td/bin/telemetryd", "unknown unit kind"),
    ],
)
def test_bad_inputs_are_refused_with_a_message(kind: str, executable: str, message: str) -> None:
    """A relative path, a newline that would inject directives, or an unknown kind is refused."""
    with pytest.raises(ValueError, match=message):
        unit_text(kind, executable)


def test_unknown_kind_has_no_file_name() -> None:
    """unit_file_name refuses a kind it does not know."""
    with pytest.raises(ValueError, match="unknown unit kind"):
        unit_file_name("upstart")


# Reads the daemon may make of another user's process, as psutil makes them.
PROC_PROBE = """
import json, sys, psutil
target = psutil.Process(int(sys.argv[1]))
reads = {"exe": target.exe, "cwd": target.cwd, "num_fds": target.num_fds,
         "environ": target.environ, "memory_full_info": target.memory_full_info}
result = {}
for name, read in reads.items():
    try:
        read()
        result[name] = "ok"
    except psutil.AccessDenied:
        result[name] = "denied"
print(json.dumps(result))
"""


@pytest.fixture
def nobody_process() -> Iterator[int]:
    """A sleep running as uid 65534, i.e. another user's agent; killed by pid afterwards."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to start a process as another user")
    proc = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "120"]
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            target = psutil.Process(proc.pid)
            if target.uids().real == 65534 and target.name() == "sleep":
                break
            time.sleep(0.01)
        else:
            pytest.fail("the sleep never switched to uid 65534")
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def probe_with_bounding_set(capabilities: list[str], pid: int) -> dict[str, str]:
    """Run the psutil probe as root keeping only ``capabilities``, as systemd would."""
    bounding = ",".join(["-all", *("+" + cap.removeprefix("CAP_").lower() for cap in capabilities)])
    result = subprocess.run(
        [
            *("setpriv", f"--bounding-set={bounding}", "--inh-caps=-all"),
            *(sys.executable, "-c", PROC_PROBE, str(pid)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    probed: dict[str, str] = json.loads(result.stdout)
    return probed


def test_system_unit_capabilities_read_other_users_proc(nobody_process: int) -> None:
    """With exactly the unit's CapabilityBoundingSet, root reads another user's exe/cwd/fd/env."""
    parsed = directives(render_systemd_unit(SHIPPED_EXECUTABLE, user=False))
    capabilities = parsed[("Service", "CapabilityBoundingSet")][0].split()
    probed = probe_with_bounding_set(capabilities, nobody_process)
    assert probed == dict.fromkeys(probed, "ok")
    assert len(probed) == 5


@pytest.mark.parametrize("dropped", ["CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"])
def test_each_capability_in_the_unit_is_needed(dropped: str, nobody_process: int) -> None:
    """Dropping either capability denies at least one read, so neither is in the set for show."""
    parsed = directives(render_systemd_unit(SHIPPED_EXECUTABLE, user=False))
    kept = [
        cap for cap in parsed[("Service", "CapabilityBoundingSet")][0].split() if cap != dropped
    ]
    probed = probe_with_bounding_set(kept, nobody_process)
    assert "denied" in probed.values(), probed
