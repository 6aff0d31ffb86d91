"""`telemetryd top` in a real terminal (tmux) against a real daemon watching a real leak."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from rich._export_format import CONSOLE_SVG_FORMAT
from rich.console import Console
from rich.text import Text

from tests.support.cdp import Browser
from tests.support.daemon_proc import REPO, DaemonProcess, clean_env
from tests.support.views import artifact_dir, keep_for_docs, watched_leak
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
SPARK = set("▂▃▄▅▆▇█")


class Terminal:
    """A detached 80x24 tmux session on a private socket, running a plain shell."""

    def __init__(self, tmp: Path) -> None:
        self.socket = str(tmp / "tmux.sock")
        env = clean_env(LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color",
                        COLUMNS="", LINES="")
        env.pop("COLUMNS")
        env.pop("LINES")
        self.env = env
        self.tmux("-u", "new-session", "-d", "-s", "t", "-x", "80", "-y", "24",
                  "bash --norc --noprofile")
        self.tmux("set-option", "-t", "t", "status", "off")

    def tmux(self, *args: str) -> str:
        """Run a tmux command on this session's server."""
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              text=True, timeout=30, env=self.env, check=True)
        return done.stdout

    def type(self, text: str) -> None:
        """Type a line into the shell."""
        self.tmux("send-keys", "-t", "t", "-l", text)
        self.tmux("send-keys", "-t", "t", "Enter")

    def key(self, key: str) -> None:
        """Press one key."""
        self.tmux("send-keys", "-t", "t", "-l", key)

    def screen(self, ansi: bool = False) -> str:
        """What the pane shows now."""
        return self.tmux("capture-pane", "-p", "-t", "t", *(["-e"] if ansi else []))

    def wait_screen(self, predicate: object, message: str, timeout: float = 60.0) -> str:
        """Poll the pane until ``predicate(screen)`` holds."""
        def check() -> str | None:
            text = self.screen()
            return text if predicate(text) else None  # type: ignore[operator]
        try:
            return wait_for(check, timeout, message=message)  # type: ignore[no-any-return]
        except AssertionError as exc:
            raise AssertionError(f"{message}; screen:\n{self.screen()}") from exc

    def alternate_screen(self) -> bool:
        """Whether the pane is on the alternate screen (a full-screen program is drawing)."""
        return self.tmux("display-message", "-p", "-t", "t", "#{alternate_on}").strip() == "1"

    def shell_pid(self) -> int:
        """The pane's shell."""
        return int(self.tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())

    def close(self) -> None:
        """Kill this tmux server (only ours: it has its own socket)."""
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=30, check=False)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    """A fresh tmux terminal, killed at the end."""
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


def top_command(config: Path) -> str:
    """The shell line starting `telemetryd top` from this checkout."""
    return (f"cd {shlex.quote(str(REPO))} && {shlex.quote(sys.executable)} -m daemon "
            f"--config {shlex.quote(str(config))} top")


def top_pid(term: Terminal) -> int:
    """The pid of `top` running under the pane's shell."""
    def find() -> int | None:
        children = psutil.Process(term.shell_pid()).children()
        return children[0].pid if children else None
    return wait_for(find, message="top started")  # type: ignore[no-any-return]


def output_lines(screen: str) -> list[str]:
    """The pane's lines, stripped (a command's output line, not the typed command)."""
    return [line.strip() for line in screen.splitlines()]


def row_of(screen: str, pid: str) -> str:
    """The line of the tree with this pid ('' if not shown)."""
    return next((line for line in screen.splitlines() if f" {pid} " in line), "")


# rich's SVG template without its web fonts: the picture must not fetch anything.
SVG_FORMAT = re.sub(r"@font-face \{\{.*?\}\}\s*", "", CONSOLE_SVG_FORMAT, flags=re.S)


def save_screenshot(term: Terminal, folder: Path, name: str) -> Path:
    """The pane with its colours as PNG: rich draws the captured ANSI text as SVG, Chromium
    renders that to pixels."""
    console = Console(record=True, width=80, force_terminal=True, color_system="truecolor",
                      file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(Text.from_ansi(term.screen(ansi=True).rstrip("\n")))
    svg = folder / f"{Path(name).stem}.svg"
    console.save_svg(str(svg), title="telemetryd top", code_format=SVG_FORMAT)
    console.file.close()
    with Browser(folder / "profile", width=1000, height=520) as browser:
        browser.open(svg.as_uri())
        return browser.screenshot(folder / name)


def test_top_shows_the_leak_grow_and_quits_restoring_the_terminal(
    tmp_path: Path, terminal: Terminal,
) -> None:
    """The tree's row, its sparkline and the state change appear; `q` restores the shell."""
    with watched_leak(tmp_path, warning_mib=30, critical_mib=400) as leak:
        terminal.type("stty -a | grep -o -- '-\\?icanon' | head -1; echo before-top")
        terminal.wait_screen(lambda s: "before-top" in output_lines(s), "shell ready")
        terminal.type(top_command(leak.config))
        pid = str(leak.agent.pid)
        terminal.wait_screen(lambda s: any("leaky" in line and pid in line and " ok" in line
                                           for line in s.splitlines()), "row at ok")
        assert terminal.alternate_screen()
        for _ in range(5):  # a leak in steps, each seen by a tick before the next
            before = row_of(terminal.screen(), pid)
            leak.agent.command("grow 10")
            terminal.wait_screen(lambda s, before=before: row_of(s, pid).split()[2:4]
                                 != before.split()[2:4], "RSS moved")
        screen = terminal.wait_screen(
            lambda s: any("leaky" in line and "warning" in line and SPARK & set(line)
                          for line in s.splitlines()), "warning with a sparkline")
        assert "rss warning" in screen  # the events strip
        assert all(len(line) <= 80 for line in screen.splitlines())
        terminal.key("s")
        terminal.wait_screen(lambda s: "sort (growth)" in s, "sort key")
        terminal.key("f")
        terminal.wait_screen(lambda s: "(leaky)" in s, "filter key")
        shot = save_screenshot(terminal, artifact_dir(tmp_path), "top.png")
        keep_for_docs(shot)
        terminal.key("q")
        terminal.wait_screen(lambda s: "before-top" in s and "leaky" not in s, "shell back")
        assert not terminal.alternate_screen()
        terminal.type("stty -a | grep -o -- '-\\?icanon' | head -1; echo after-top")
        after = terminal.wait_screen(lambda s: "after-top" in output_lines(s), "stty after")
    modes = [line.strip() for line in after.splitlines() if line.strip() in ("icanon",
                                                                             "-icanon")]
    assert modes == ["icanon", "icanon"], after  # canonical mode before and after


def test_top_says_the_daemon_is_down_then_recovers_and_sigterm_restores(
    tmp_path: Path, terminal: Terminal,
) -> None:
    """Stopping the daemon shows `not running`; a new daemon brings rows back; SIGTERM exits."""
    with watched_leak(tmp_path) as leak:
        terminal.type(top_command(leak.config))
        terminal.wait_screen(lambda s: "leaky" in s and "pid" in s, "rows")
        top = top_pid(terminal)
        assert leak.daemon.stop() == 0
        terminal.wait_screen(lambda s: "telemetryd is not running" in s, "down message")
        again = DaemonProcess(leak.config, tmp_path / "log2.jsonl")
        try:
            terminal.wait_screen(lambda s: "not running" not in s and str(leak.agent.pid) in s
                                 and "tick" in s, "recovered")
        finally:
            assert again.stop() == 0
        leak.daemon = again  # the context manager stops it once more (a no-op now)
        os.kill(top, signal.SIGTERM)
        terminal.wait_screen(lambda s: s.strip().endswith(("$", "#")) and "leaky" not in s,
                             "prompt after SIGTERM", timeout=30)
        assert not terminal.alternate_screen()
        assert not psutil.pid_exists(top) or psutil.Process(top).status() == "zombie"
