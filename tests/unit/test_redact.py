"""Redaction: credential-looking command-line values never leave in a report."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crash_reports.redact import REDACTED, redact_args, redact_text

SECRET = "Zq7sEcReTvAlUe42"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["agent", "--api-key", SECRET], ["agent", "--api-key", REDACTED],
                     id="flag-then-value"),
        pytest.param(["agent", "--api-key=" + SECRET], ["agent", "--api-key=" + REDACTED],
                     id="flag-equals-value"),
        pytest.param(["agent", "--token=" + SECRET], ["agent", "--token=" + REDACTED],
                     id="token-equals"),
        pytest.param(["agent", "--token", SECRET], ["agent", "--token", REDACTED],
                     id="token-then-value"),
        pytest.param(["agent", "--password", SECRET], ["agent", "--password", REDACTED],
                     id="password-flag"),
        pytest.param(["agent", "--client-secret=" + SECRET],
                     ["agent", "--client-secret=" + REDACTED], id="secret-flag"),
        pytest.param(["agent", "-k", "x", "--API_KEY", SECRET],
                     ["agent", "-k", "x", "--API_KEY", REDACTED], id="upper-case-flag"),
        pytest.param(["aider", "sk-ant-api03-" + SECRET], ["aider", REDACTED], id="sk-anthropic"),
        pytest.param(["codex", "--model", "o3", "sk-proj-" + SECRET],
                     ["codex", "--model", "o3", REDACTED], id="sk-openai"),
        pytest.param(["curl", "-H", "Authorization: Bearer " + SECRET],
                     ["curl", "-H", "Authorization: Bearer " + REDACTED], id="bearer-header"),
        pytest.param(["curl", "--header=authorization: bearer " + SECRET],
                     ["curl", "--header=authorization: bearer " + REDACTED], id="bearer-lower"),
        pytest.param(["env", "ANTHROPIC_API_KEY=" + SECRET, "claude"],
                     ["env", "ANTHROPIC_API_KEY=" + REDACTED, "claude"], id="env-key"),
        pytest.param(["env", "GH_TOKEN=" + SECRET], ["env", "GH_TOKEN=" + REDACTED],
                     id="env-token"),
        pytest.param(["env", "AWS_SECRET_ACCESS_KEY=" + SECRET],
                     ["env", "AWS_SECRET_ACCESS_KEY=" + REDACTED], id="env-secret"),
        pytest.param(["env", "DB_PASSWORD=" + SECRET], ["env", "DB_PASSWORD=" + REDACTED],
                     id="env-password"),
        pytest.param(["env", "api_key=" + SECRET], ["env", "api_key=" + REDACTED],
                     id="env-lower-case"),
        pytest.param(["git", "clone", f"https://user:{SECRET}@example.com/r.git"],
                     ["git", "clone", f"https://user:{REDACTED}@example.com/r.git"],
                     id="url-password"),
    ],
)
def test_each_credential_pattern_is_redacted(args: list[str], expected: list[str]) -> None:
    """Every credential shape named in the issue is replaced by [redacted]."""
    result = redact_args(args)
    assert result == expected
    assert not any(SECRET in arg for arg in result)


def test_ordinary_arguments_are_kept() -> None:
    """Arguments that are not credentials pass through unchanged."""
    args = ["node", "/usr/lib/node_modules/@google/gemini-cli/dist/index.js", "--model",
            "gemini-2.5-pro", "-p", "fix the tests", "PATH=/usr/bin", "HOME=/home/a", "--",
            "sketch.py", "--max-tokens", "4096"]
    kept = redact_args(args)
    assert kept[:10] == args[:10]


def test_secret_inside_a_shell_command_string_is_redacted() -> None:
    """A whole command line passed as one argument (sh -c '...') is redacted word by word."""
    script = (f"cd /src && OPENAI_API_KEY={SECRET} aider --api-key {SECRET}x "
              f"--token={SECRET}y --model opus")
    result = redact_args(["sh", "-c", script])
    assert result[:2] == ["sh", "-c"]
    assert SECRET not in result[2]
    assert result[2].startswith("cd /src && OPENAI_API_KEY=[redacted] aider --api-key [redacted]")
    assert result[2].endswith("--token=[redacted] --model opus")


def test_redact_text_free_text() -> None:
    """redact_text catches bearer tokens, sk- keys and URL passwords inside prose."""
    text = f"calling with Bearer {SECRET} and sk-{SECRET} at https://me:{SECRET}@host/x"
    result = redact_text(text)
    assert SECRET not in result
    assert result.count(REDACTED) == 3


_SECRET_VALUES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                         min_size=8, max_size=40).map(lambda s: "Q9" + s)
_SECRET_NAMES = st.builds(
    lambda prefix, word, suffix: prefix + word + suffix,
    st.sampled_from(["", "MY_", "OPENAI_API_", "x_", "Anthropic"]),
    st.sampled_from(["KEY", "TOKEN", "SECRET", "PASSWORD", "key", "token", "Secret", "Password"]),
    st.sampled_from(["", "_1", "S", "_FILE"]),
)


@given(name=_SECRET_NAMES, value=_SECRET_VALUES,
       style=st.sampled_from(["flag-space", "flag-equals", "assignment", "bearer", "sk",
                              "shell"]))
def test_generated_credentials_never_survive(name: str, value: str, style: str) -> None:
    """For any secret-looking name and value, in any supported shape, the value is gone."""
    flag = "--" + name.lower().replace("_", "-")
    args = {
        "flag-space": ["agent", flag, value, "--verbose"],
        "flag-equals": ["agent", f"{flag}={value}"],
        "assignment": ["env", f"{name}={value}", "agent"],
        "bearer": ["curl", "-H", f"Authorization: Bearer {value}"],
        "sk": ["agent", f"sk-{value}"],
        "shell": ["bash", "-lc", f"cd /x && {name}={value} agent {flag} {value} && echo done"],
    }[style]
    result = redact_args(args)
    assert not any(value in arg for arg in result), result
    assert len(result) == len(args)


@given(st.lists(st.text(max_size=30), max_size=8))
def test_redaction_is_idempotent_and_keeps_length(args: list[str]) -> None:
    """Redacting twice changes nothing more, and the argument count never changes."""
    once = redact_args(args)
    assert len(once) == len(args)
    assert redact_args(once) == once
