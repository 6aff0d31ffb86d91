"""What is not a secret survives redaction: real agent command lines, model names, paths,
versions, digests and uuids used as session ids, in every position a secret would be taken."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from genai_prices.data_snapshot import get_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from crash_reports.event.redact import redact_args, redact_name, redact_text

FIXTURE = Path(__file__).parents[1] / "fixtures" / "process_shapes.json"


def recorded_command_lines() -> list[list[str]]:
    """Every command line of the recorded agent process shapes, their parents included."""
    data = json.loads(FIXTURE.read_text())
    lines = []
    for shape in data["shapes"] + data["negatives"]:
        lines.append(shape["cmdline"])
        if shape.get("parent"):
            lines.append(shape["parent"]["cmdline"])
    return [line for line in lines if line]


def test_recorded_agent_command_lines_are_kept_whole() -> None:
    """None of the 200+ recorded agent, MCP server and parent command lines loses a word
    (``--max-thinking-tokens 31999`` and ``--no-session -t ...`` used to)."""
    changed = [(line, redact_args(line)) for line in recorded_command_lines()
               if redact_args(line) != line]
    assert not changed


MODELS = sorted({model.id for provider in get_snapshot().providers for model in provider.models})
MODEL_POSITIONS: list[Callable[[str], list[str]]] = [
    lambda m: ["agent", "--model", m],
    lambda m: ["agent", f"--model={m}"],
    lambda m: ["agent", "-m", m],
    lambda m: ["env", f"ANTHROPIC_MODEL={m}", "claude"],
    lambda m: ["python", "-c", f'run({{"model": "{m}"}})'],
    lambda m: ["curl", f"https://api.example/v1/models/{m}?model={m}"],
]


def test_no_known_model_name_is_redacted() -> None:
    """Each of the ~1,900 model ids genai-prices knows stays itself, as a name sent over OTLP
    and as a command-line value in every position."""
    assert len(MODELS) > 1000
    for model in MODELS:
        assert redact_name(model) == model
        for position in MODEL_POSITIONS:
            assert redact_args(position(model)) == position(model), model


SESSION_POSITIONS: list[Callable[[str], list[str]]] = [
    lambda u: ["claude", "--session-id", u],
    lambda u: ["claude", "--resume", u],
    lambda u: ["codex", "resume", u],
    lambda u: ["env", f"SESSION_ID={u}", "agent"],
    lambda u: ["agent", f"--session-id={u}"],
    lambda u: ["curl", f"https://h/api?session_id={u}&page=2"],
    lambda u: ["python", "-c", f'f({{"session_id": "{u}"}})'],
]


@settings(max_examples=200, deadline=None)
@given(session=st.uuids(), position=st.sampled_from(range(len(SESSION_POSITIONS))))
def test_uuids_as_session_ids_are_kept(session: uuid.UUID, position: int) -> None:
    """A uuid named as a session (or instance) id is an identifier, not a secret."""
    args = SESSION_POSITIONS[position](str(session))
    assert redact_args(args) == args
    assert redact_name(str(session)) == str(session)


_SEGMENT = st.from_regex(r"[A-Za-z][a-z]{1,9}[0-9]{0,3}(\.[a-z]{1,4})?", fullmatch=True)
_PATHS = st.lists(_SEGMENT, min_size=1, max_size=8).map(lambda parts: "/" + "/".join(parts))
PATH_POSITIONS: list[Callable[[str], list[str]]] = [
    lambda p: ["cat", p],
    lambda p: ["agent", "--config", p],
    lambda p: ["agent", f"--config={p}"],
    lambda p: ["env", f"HOME={p}", "agent"],
    lambda p: ["sh", "-c", f"cd {p} && make"],
    lambda p: ["node", f"{p}/dist/index.js", "--cwd", p],
]


@settings(max_examples=300, deadline=None)
@given(path=_PATHS, position=st.sampled_from(range(len(PATH_POSITIONS))))
def test_ordinary_paths_are_kept(path: str, position: int) -> None:
    """Paths made of words, digits and extensions survive in every position."""
    args = PATH_POSITIONS[position](path)
    assert redact_args(args) == args


_VERSIONS = st.from_regex(r"v?[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,4}(-(rc|beta|alpha)\.?[0-9])?",
                          fullmatch=True)
_DIGESTS = st.one_of(st.binary(min_size=20, max_size=20), st.binary(min_size=32, max_size=32)
                     ).map(bytes.hex)


@settings(max_examples=200, deadline=None)
@given(version=_VERSIONS, digest=_DIGESTS)
def test_versions_and_digests_are_kept(version: str, digest: str) -> None:
    """Versions, commit hashes and image digests are ids, not credentials."""
    args = ["tool", f"--version={version}", f"commit={digest}", f"img@sha256:{digest}",
            "--rev", digest, f"https://github.com/o/r/commit/{digest}"]
    assert redact_args(args) == args


@pytest.mark.parametrize("args", [
    ["claude", "--max-thinking-tokens", "31999", "--model", "claude-opus-4-5-20251101"],
    ["agent", "--max-tokens", "4096", "--token-limit", "200000"],
    ["goose", "run", "--no-session", "-t", "summarise the repo"],
    ["codex", "--dangerously-bypass-approvals-and-sandbox", "exec", "fix the build"],
    ["claude", "--dangerously-skip-permissions", "--session-id",
     "0b8f3c4e-2a51-4d07-9b36-5f1e7a2c9d40"],
    ["docker", "run", "-p", "8080:80", "-u", "1000:1000", "ghcr.io/github/github-mcp-server"],
    ["docker", "run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN",
     "ghcr.io/github/github-mcp-server"],
    ["ssh", "-p", "2222", "host"], ["mkdir", "-p", "out/dir"], ["7z", "x", "-o/tmp/out", "a.7z"],
    ["git", "config", "--global", "credential.helper", "store"],
    ["claude", "config", "set", "-g", "apiKeyHelper", "/home/user/bin/key-helper.sh"],
    ["aws", "configure", "set", "region", "eu-west-1"],
    ["chromium", "--password-store=basic", "--user-data-dir=/tmp/p"],
    ["env", "LANG=en_US.UTF-8", "TERM=xterm-256color", "PATH=/usr/local/bin:/usr/bin"],
    ["curl", "https://github.com/pre-commit/pre-commit-hooks"],
    ["npx", "-y", "@modelcontextprotocol/server-github"],
    ["uvx", "--from", "aider-chat@0.86.1", "aider", "--model", "openrouter/x-ai/grok-4-fast"],
])
def test_look_alikes_in_agent_command_lines_are_kept(args: list[str]) -> None:
    """Counting flags, switches, ports, subcommands and settings that only mention a secret."""
    assert redact_args(args) == args


def test_free_text_without_secrets_is_kept() -> None:
    """A tool name, an error message and a host name pass through ``redact_text`` untouched."""
    for text in ("Bash", "mcp__github__create_pull_request", "rate_limit_error: slow down",
                 "build-host-07.example.internal", "claude-code", "codex_cli_rs"):
        assert redact_text(text) == text
