"""A corpus of secret shapes real command lines carry: none survives redaction, in any
argument position, and none reaches a built report."""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crash_reports.event.redact import (
    MAX_ARG_CHARS,
    MAX_COMMAND_LINE_CHARS,
    redact_args,
    redact_command_line,
)
from crash_reports.event.report import sanitize_process

PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUQ9SECRETPEM\n"
       "-----END OPENSSH PRIVATE KEY-----")
# (argument list with the secret as {v}, description). {v} is replaced by a unique value.
CORPUS: list[tuple[list[str], str]] = [
    (["gpg", "--passphrase", "{v}", "--batch"], "gpg passphrase, separate"),
    (["gpg", "--passphrase={v}"], "gpg passphrase, equals"),
    (["az", "storage", "--connection-string",
      "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={v};EndpointSuffix=core"],
     "Azure AccountKey in a connection string"),
    (["app", "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=root;"
      "SharedAccessKey={v}"], "Service Bus SharedAccessKey"),
    (["sqlcmd", "Server=db;Database=x;User Id=sa;Password={v};"], "SQL Server Password="),
    (["helm", "install", "x", "--set", "secrets.token={v}"], "helm --set secret key"),
    (["helm", "upgrade", "--set", "image.tag=1.2,db.password={v},replicas=2"],
     "helm --set list"),
    (["helm", "upgrade", "--set-string", "auth.apiKey={v}"], "helm --set-string"),
    (["npm", "config", "set", "//registry.npmjs.org/:_authToken={v}"], "npm _authToken"),
    (["npm", "publish", "--otp", "{v}"], "npm --otp, separate"),
    (["npm", "publish", "--otp={v}"], "npm --otp, equals"),
    (["ssh-tool", "--private-key", "-----BEGIN RSA PRIVATE KEY-----{v}"],
     "a value starting with dashes after a secret flag"),
    (["tool", "--key-data", PEM.replace("Q9SECRETPEM", "{v}")], "PEM block"),
    (["sh", "-c", "echo '" + PEM.replace("Q9SECRETPEM", "{v}") + "' > k"], "PEM in a script"),
    (["psql", "postgresql://user:{v}@db:5432/app"], "postgres URL"),
    (["app", "--db", "mongodb+srv://admin:{v}@cluster0.example.net/"], "mongodb+srv URL"),
    (["redis-cli", "-u", "redis://:{v}@cache:6379"], "redis URL, empty user"),
    (["java", "-jar", "a.jar", "jdbc:mysql://db/x?user=root&password={v}"], "JDBC query"),
    (["odbc", "Driver={{x}};Server=db;UID=sa;PWD={v};"], "ODBC PWD="),
    (["tool", "--GITHUB_TOKEN", "{v}"], "*_TOKEN as a long flag"),
    (["tool", "-GITHUB_TOKEN={v}"], "*_TOKEN as a short flag with ="),
    (["tool", "--github-token={v}"], "kebab token flag"),
    (["docker", "run", "-e", "NPM_TOKEN={v}", "img"], "docker -e"),
    (["docker", "run", "--env=CLIENT_SECRET={v}", "img"], "docker --env="),
    (["docker", "build", "--build-arg", "AWS_SECRET_ACCESS_KEY={v}", "."], "build-arg"),
    (["msbuild", "/p:Password={v}"], "msbuild property"),
    (["tool", "--aws-session-token", "{v}"], "session token"),
    (["oathtool", "--totp", "{v}"], "totp"),
    (["curl", "https://blob.example/x?sv=2020&sig={v}"], "SAS signature"),
    (["env", "SLACK_SIGNING_SECRET={v}", "node", "app.js"], "env assignment"),
    (["bash", "-c", "export HF_TOKEN={v} && python train.py"], "export in a script"),
    (["agent", "--api-key", "-{v}"], "value starting with a dash"),
]


def fill(args: list[str], value: str) -> list[str]:
    return [arg.replace("{v}", value).replace("{{", "{").replace("}}", "}") for arg in args]


@pytest.mark.parametrize(("args", "what"), CORPUS, ids=[what for _, what in CORPUS])
def test_corpus_secret_is_redacted(args: list[str], what: str) -> None:
    """Each secret shape of the corpus loses its value; the argument count is kept."""
    value = "Q9SECRETxyz0123456789"
    filled = fill(args, value)
    redacted = redact_args(filled)
    assert not any("Q9SECRET" in arg for arg in redacted), (what, redacted)
    assert len(redacted) == len(filled)


_VALUES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_",
                  min_size=10, max_size=40).map(lambda s: "Q9" + s)
_NOISE = st.lists(st.sampled_from(["--verbose", "-v", "run", "--model", "opus", "./x.py",
                                   "--", "-c", "x=1", "a,b"]), max_size=3)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CORPUS), value=_VALUES, before=_NOISE, after=_NOISE)
def test_no_corpus_secret_survives_into_a_report(case, value, before, after) -> None:
    """Whatever surrounds it, no corpus secret reaches the process context of a report."""
    args, _ = case
    filled = fill(args, value)
    line = [filled[0], *before, *filled[1:], *after]
    clean = sanitize_process({"pid": 1, "cmdline": line, "environ": {"K": value}})
    assert value not in json.dumps(clean)
    assert value not in json.dumps(sanitize_process({"cmdline": " ".join(line)}))


def test_huge_command_line_is_capped() -> None:
    """A 100 KB argument and 5000 arguments are cut to the documented sizes, with markers."""
    one = redact_command_line(["agent", "x" * 100_000])
    assert len(one[1]) <= MAX_ARG_CHARS + 30 and one[1].endswith("chars]")
    many = redact_command_line(["a" * 100] * 5000)
    assert sum(len(arg) for arg in many) <= MAX_COMMAND_LINE_CHARS + 100
    assert re.fullmatch(r"…\[\+\d+ more arguments\]", many[-1])


def test_hostile_connection_strings_redact_in_linear_time() -> None:
    """Long runs of commas, ``=`` and dashes cost time proportional to their length."""
    for text in ("a=" + ",b" * 50_000, "-----BEGIN X-----" + "-" * 100_000,
                 "k=" + "=" * 100_000, "x" * 100_000 + "=1", "a://b:c" * 20_000,
                 "https://h:1/" * 20_000, ",".join(["a=1"] * 30_000)):
        started = time.perf_counter()
        redact_args(["tool", text])
        assert time.perf_counter() - started < 2.0, text[:20]
