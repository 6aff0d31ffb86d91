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
    # Secrets by position: the value after a flag or key that names one, for a known tool.
    (["aws", "configure", "set", "aws_secret_access_key", "{v}"], "aws configure set"),
    (["aws", "configure", "set", "--profile", "p", "aws_session_token", "{v}"],
     "aws configure set, a flag before the setting"),
    (["git", "config", "--global", "github.token", "{v}"], "git config token"),
    (["npm", "config", "set", "//registry.npmjs.org/:_authToken", "{v}"], "npm config set"),
    (["docker", "login", "-u", "me", "-p", "{v}", "registry.example"], "docker login -p"),
    (["docker", "login", "--username", "me", "-p{v}"], "docker login -pVALUE"),
    (["podman", "login", "-p", "{v}", "quay.io"], "podman login -p"),
    (["helm", "registry", "login", "-u", "me", "-p", "{v}", "r.example"], "helm registry login"),
    (["openssl", "pkcs12", "-in", "c.p12", "-passin", "pass:{v}"], "openssl -passin pass:"),
    (["openssl", "rsa", "-in", "k.pem", "-passout", "pass:{v}", "-out", "x"],
     "openssl -passout pass:"),
    (["openssl", "enc", "-aes-256-cbc", "-k", "{v}", "-in", "f"], "openssl enc -k"),
    (["tool", "-passin", "{v}"], "-passin for any tool"),
    (["keytool", "-importkeystore", "-srcstorepass", "{v}", "-deststorepass", "{v}"],
     "keytool -storepass"),
    (["ldapsearch", "-x", "-D", "cn=admin,dc=x", "-w", "{v}", "-b", "dc=x"], "ldapsearch -w"),
    (["ldapmodify", "-H", "ldap://h", "-w", "{v}", "-f", "x.ldif"], "ldapmodify -w"),
    (["ldappasswd", "-w", "{v}", "-s", "{v}", "uid=u"], "ldappasswd -s"),
    (["zip", "-P", "{v}", "out.zip", "file"], "zip -P"),
    (["unzip", "-P", "{v}", "in.zip"], "unzip -P"),
    (["7z", "a", "-p{v}", "-mhe=on", "out.7z", "dir"], "7z -pVALUE"),
    (["7za", "x", "-p{v}", "in.7z"], "7za -pVALUE"),
    (["rar", "a", "-hp{v}", "out.rar", "dir"], "rar -hpVALUE"),
    (["smbclient", "//host/share", "-U", "user%{v}"], "smbclient -U user%password"),
    (["smbclient", "//host/share", "--user=DOMAIN/user%{v}"], "smbclient --user="),
    (["rpcclient", "-U", "admin%{v}", "host"], "rpcclient -U"),
    (["gh", "secret", "set", "API_TOKEN", "--body", "{v}"], "gh secret set --body"),
    (["gh", "secret", "set", "NAME", "-b{v}", "--repo", "o/r"], "gh secret set -bVALUE"),
    (["gh", "secret", "set", "NAME", "--body={v}"], "gh secret set --body="),
    (["kubectl", "create", "secret", "generic", "s", "--from-literal=ADMIN={v}"],
     "kubectl --from-literal"),
    (["security", "add-generic-password", "-a", "me", "-s", "svc", "-w", "{v}"],
     "macOS security -w"),
    (["ipmitool", "-I", "lanplus", "-H", "bmc", "-U", "admin", "-P", "{v}", "power", "status"],
     "ipmitool -P"),
    (["sqlcmd", "-S", "db", "-U", "sa", "-P", "{v}"], "sqlcmd -P"),
    (["xfreerdp", "/v:host", "/u:me", "/p:{v}"], "xfreerdp /p:"),
    (["http", "-a", "me:{v}", "GET", "https://api.example/"], "httpie -a user:password"),
    (["agent", "--webhook", "{v}"], "a webhook flag"),
    (["env", "SLACK_WEBHOOK_URL={v}", "notify"], "a webhook URL variable"),
    (["sh", "-c", "docker login -u me -p {v} r.example && docker push x"],
     "docker login in a script"),
    (["sh", "-c", "7z x -p{v} a.7z; ldapsearch -w {v} -b dc=x"], "7z and ldap in a script"),
]


def fill(args: list[str], value: str) -> list[str]:
    return [arg.replace("{v}", value).replace("{{", "{").replace("}}", "}") for arg in args]


@pytest.mark.parametrize(("args", "what"), CORPUS, ids=[what for _, what in CORPUS])
def test_corpus_secret_is_redacted(args: list[str], what: str) -> None:
    """Each secret shape of the corpus loses its value; the argument count is kept."""
    value = "Q9vLzWq0123456789"  # no secret word in it: only the shape can redact it
    filled = fill(args, value)
    redacted = redact_args(filled)
    assert not any("Q9vLzWq" in arg for arg in redacted), (what, redacted)
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
