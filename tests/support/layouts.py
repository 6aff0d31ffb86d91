"""Start real processes shaped like each recorded agent install layout, under a temp root.

Each shape in tests/fixtures/process_shapes.json gets its own root directory standing in
for ``/``: its executable is a hard link (or copy) of a small real binary placed at the
recorded path, so the kernel gives the process the recorded name, executable and argv.
Native binaries are ``sleep``; interpreters (node, python) are this machine's Python
running a script placed at the recorded script path; shell shims are ``/bin/sh`` scripts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.watch.proc.versions import is_interpreter

FIXTURE = Path(__file__).parents[1] / "fixtures" / "process_shapes.json"
SLEEP_SCRIPT = "import time\nwhile True:\n    time.sleep(60)\n"


def linux_shapes() -> list[dict[str, Any]]:
    """The recorded Linux shapes a watch must find."""
    shapes = json.loads(FIXTURE.read_text(encoding="utf-8"))["shapes"]
    return [s for s in shapes if s["platform"] == "linux" and s["expect_match"]]


def _place(source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    target.chmod(0o755)


def _python() -> str:
    """A Python binary that still finds its standard library when linked elsewhere."""
    system = Path("/usr/bin/python3")
    return os.path.realpath(system) if system.exists() else sys.executable


@dataclass
class Started:
    """A process started in the shape of a layout."""

    shape: dict[str, Any]
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """Its pid."""
        return self.proc.pid


def start_layout(shape: dict[str, Any], root: Path) -> Started | None:
    """Start one process shaped like ``shape`` under ``root``; None if it cannot be emulated
    (a process title rewritten at run time, a ``-m`` module, an interpreter flag)."""
    def under(path: str) -> str:
        return str(root) + path if path.startswith("/") else path

    name, exe, argv = shape["name"], shape["exe"], list(shape["cmdline"])
    exe_path = Path(under(exe))
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
             "stderr": subprocess.DEVNULL}
    if os.path.basename(exe) in ("dash", "bash", "sh"):
        if len(argv) < 2 or os.path.basename(argv[1]) != name:
            return None
        script = Path(under(argv[1]))
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("#!/bin/sh\nsleep 600\n")
        script.chmod(0o755)
        return Started(shape, subprocess.Popen([str(script)], **quiet))  # type: ignore[call-overload]
    if is_interpreter(name, None):
        paths = [arg for arg in argv[1:] if arg.startswith("/")]
        if not paths or "" in argv:
            return None
        # Python runs the script; interpreter flags (node's --max-old-space-size) follow it.
        _place(_python(), exe_path)
        script = Path(under(paths[0]))
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(SLEEP_SCRIPT)
        args = [under(argv[0]), str(script),
                *[under(arg) for arg in argv[1:] if arg != paths[0]]]
        return Started(shape, subprocess.Popen(args, executable=exe_path, **quiet))  # type: ignore[call-overload]
    if shape["agent"] == "mcp-server":
        # Found by its arguments: Python keeps them (after -c), sleep would refuse them.
        _place(_python(), exe_path)
        args = [under(argv[0]), "-c", "import time; time.sleep(600)", *argv[1:]]
        return Started(shape, subprocess.Popen(args, executable=exe_path, **quiet))  # type: ignore[call-overload]
    if "" in argv[1:]:
        argv = argv[:1]  # a process title over the argv area: the name is what counts
    _place(shutil.which("sleep") or "/bin/sleep", exe_path)
    run_as = exe_path
    if exe_path.name != name[:15] and not name.startswith(exe_path.name[:15]):
        run_as = root / "bin" / name
        run_as.parent.mkdir(parents=True, exist_ok=True)
        run_as.symlink_to(exe_path)
    args = [under(argv[0]), "600"]
    return Started(shape, subprocess.Popen(args, executable=run_as, **quiet))  # type: ignore[call-overload]
