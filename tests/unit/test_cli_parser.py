"""The command line's parser: every command module follows one convention; --config anywhere."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from daemon.cli.main import COMMANDS, build_parser
from daemon.exit_codes import ExitCode

COMMAND_LINES = [
    ["run"], ["status", "--json"], ["check-config", "x.toml"], ["reports", "list"],
    ["reports", "show", "abc"], ["reports", "flush"], ["reports", "requeue", "a", "b"],
    ["reports", "purge", "--all"], ["stats", "--since", "1h"], ["demo"],
    ["install-unit", "--user"], ["budget", "check", "--hook"],
]


def test_every_command_module_has_add_parser_and_run() -> None:
    """Each command module exposes add_parser(subparsers) and run(args) -> ExitCode.

    ``wrap`` alone may return a plain int too: its child's exit status, passed through.
    """
    for module in COMMANDS:
        assert list(inspect.signature(module.add_parser).parameters) == ["subparsers"]
        assert list(inspect.signature(module.run).parameters) == ["args"]
        expected = "ExitCode | int" if module.__name__ == "daemon.cli.wrap" else "ExitCode"
        assert inspect.signature(module.run).return_annotation == expected


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_config_is_taken_before_or_after_any_subcommand(argv: list[str]) -> None:
    """--config works before the command, after it, and after its sub-subcommand."""
    parser = build_parser()
    assert parser.parse_args(argv).config is None
    words = 2 if argv[0] in ("reports", "budget") else 1  # the command and its sub-subcommand
    for at in (*range(words + 1), len(argv)):
        args = parser.parse_args([*argv[:at], "--config", "c.toml", *argv[at:]])
        assert args.config == Path("c.toml"), argv
        assert args.handler.__module__.startswith("daemon.cli.")


def test_wrap_leaves_what_follows_the_double_dash_to_the_child() -> None:
    """`wrap -c a -- cmd --config b`: a is ours, `--config b` is the child's."""
    args = build_parser().parse_args(["wrap", "-c", "a", "--", "cmd", "--config", "b"])
    assert args.config == Path("a") and args.argv == ["--", "cmd", "--config", "b"]


def test_a_later_config_wins_and_an_earlier_one_is_kept() -> None:
    """A --config after the command overrides one before it; none after keeps the first."""
    parser = build_parser()
    assert parser.parse_args(["-c", "a", "reports", "list"]).config == Path("a")
    assert parser.parse_args(["-c", "a", "reports", "list", "-c", "b"]).config == Path("b")


def test_exit_codes_are_the_documented_numbers() -> None:
    """Monitoring-plugin codes for status, sysexits for the rest."""
    assert [ExitCode.OK, ExitCode.WARNING, ExitCode.CRITICAL, ExitCode.UNKNOWN] == [0, 1, 2, 3]
    assert (ExitCode.USAGE, ExitCode.UNAVAILABLE, ExitCode.CANT_CREATE, ExitCode.CONFIG) == (
        64, 69, 73, 78)
