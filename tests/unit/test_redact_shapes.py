"""Secrets known by their shape: vendor tokens, webhook URLs and random-looking values in a
``key=value`` position are redacted in every context, as properties; and every pattern stays
linear on long hostile inputs."""

from __future__ import annotations

import string
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crash_reports.event.redact import REDACTED, redact_args, redact_name, redact_text
from crash_reports.event.secret_shapes import looks_random

B62 = string.ascii_letters + string.digits
B64URL = B62 + "-_"
HEX = "0123456789abcdef"
UPPER_DIGITS = string.ascii_uppercase + string.digits
BECH32 = "023456789ACDEFGHJKLMNPQRSTUVWXYZ"


def chars(alphabet: str, low: int, high: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=low, max_size=high or low)


def token(prefix: str, body: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    """A token and the part of it that must not survive (its body)."""
    return body.map(lambda b: (prefix + b, b))


# Each strategy gives (the secret as it appears, the part that is the credential).
SHAPES: dict[str, st.SearchStrategy[tuple[str, str]]] = {
    "Slack webhook": st.tuples(chars(UPPER_DIGITS, 8, 10), chars(UPPER_DIGITS, 8, 10),
                               chars(B62, 24)).map(
        lambda p: (f"https://hooks.slack.com/services/T{p[0]}/B{p[1]}/{p[2]}", p[2])),
    "Discord webhook": st.tuples(st.sampled_from(["discord.com", "discordapp.com"]),
                                 st.sampled_from(["", "v10/"]), chars(string.digits, 17, 19),
                                 chars(B64URL, 68)).map(
        lambda p: (f"https://{p[0]}/api/{p[1]}webhooks/{p[2]}/{p[3]}", p[3])),
    "Teams webhook": chars(HEX, 32).map(
        lambda h: (f"https://acme.webhook.office.com/webhookb2/x@y/IncomingWebhook/{h}/z", h)),
    "Telegram bot URL": st.tuples(chars(string.digits, 8, 10), chars(B64URL, 33)).map(
        lambda p: (f"https://api.telegram.org/bot{p[0]}:AA{p[1]}/sendMessage", p[1])),
    "Telegram bot token": st.tuples(chars(string.digits, 8, 10), chars(B64URL, 33)).map(
        lambda p: (f"{p[0]}:AA{p[1]}", p[1])),
    "npm": token("npm_", chars(B62, 36)),
    "PyPI": token("pypi-AgEIcHlwaS5vcmc", chars(B64URL, 60, 180)),
    "Vault hvs.": token("hvs.", chars(B64URL, 24, 95)),
    "Vault hvb.": token("hvb.", chars(B64URL, 24, 95)),
    "SendGrid": st.tuples(chars(B64URL, 22), chars(B64URL, 43)).map(
        lambda p: (f"SG.{p[0]}.{p[1]}", p[1])),
    "Google ya29.": token("ya29.", chars(B64URL, 40, 200)),
    "Google client secret": token("GOCSPX-", chars(B64URL, 28)),
    "age secret key": token("AGE-SECRET-KEY-1", chars(BECH32, 58)),
    "Twilio API key": token("SK", chars(HEX, 32)),
    "Databricks": token("dapi", chars(HEX, 32)),
    "Shopify": st.tuples(st.sampled_from(["shpat_", "shpca_", "shppa_", "shpss_"]),
                         chars(HEX, 32)).map(lambda p: (p[0] + p[1], p[1])),
    "DigitalOcean": st.tuples(st.sampled_from(["dop_v1_", "doo_v1_", "dor_v1_"]),
                              chars(HEX, 64)).map(lambda p: (p[0] + p[1], p[1])),
    "Anthropic": token("sk-ant-api03-", chars(B64URL, 80, 95)),
    "OpenAI project": token("sk-proj-", chars(B64URL, 40, 120)),
    "GitHub classic": token("ghp_", chars(B62, 36)),
    "GitHub fine-grained": token("github_pat_", chars(B62 + "_", 82)),
    "Slack bot": st.tuples(chars(string.digits, 10, 13), chars(B62, 24)).map(
        lambda p: (f"xoxb-{p[0]}-{p[0]}-{p[1]}", p[1])),
    "Slack app": token("xapp-1-", chars(B62, 40)),
    "AWS access key id": token("AKIA", chars(UPPER_DIGITS, 16)),
    "Google API key": token("AIza", chars(B64URL, 35)),
    "Stripe": token("sk_live_", chars(B62, 24, 99)),
    "Stripe webhook": token("whsec_", chars(B62, 32)),
    "Hugging Face": token("hf_", chars(B62, 34)),
    "GitLab": token("glpat-", chars(B64URL, 20)),
    "Docker Hub": token("dckr_pat_", chars(B64URL, 27)),
    "Groq": token("gsk_", chars(B62, 52)),
    "xAI": token("xai-", chars(B62, 80)),
    "Tailscale": token("tskey-auth-", chars(B64URL, 30, 50)),
}
CONTEXTS: list[Callable[[str], list[str]]] = [
    lambda t: ["tool", t],
    lambda t: ["tool", f"--target={t}"],
    lambda t: ["tool", "--target", t, "--verbose"],
    lambda t: ["sh", "-c", f"curl -s {t} && echo ok"],
    lambda t: ["python", "-c", f'post({{"target": "{t}"}})'],
    lambda t: ["env", f"TARGET={t}", "run"],
    lambda t: [f"deploy --to {t} --fast"],
]


@settings(max_examples=400, deadline=None)
@given(shape=st.sampled_from(sorted(SHAPES)), data=st.data(),
       context=st.sampled_from(range(len(CONTEXTS))))
def test_every_token_shape_is_redacted_in_every_context(shape, data, context) -> None:
    """Any token of any named shape, in any context, loses its credential part."""
    text, secret = data.draw(SHAPES[shape])
    args = CONTEXTS[context](text)
    redacted = redact_args(args)
    assert secret not in " ".join(redacted), (shape, redacted)
    assert len(redacted) == len(args)
    assert secret not in redact_name(text)


_RANDOM = chars(B62 + "+/_-", 20, 64).filter(looks_random)
POSITIONS: list[Callable[[str], list[str]]] = [
    lambda v: ["env", f"REF={v}", "run"],
    lambda v: ["tool", f"--ref={v}"],
    lambda v: ["curl", f"https://api.example/x?ref={v}&page=2"],
    lambda v: ["sh", "-c", f"REF={v} make deploy"],
    lambda v: ["python", "-c", f'f({{"ref": "{v}"}})'],
    lambda v: ["app", f"Server=db;Ref={v};Port=1"],
    lambda v: ["helm", "upgrade", "--set", f"image.tag=1,ref={v}"],
]


@settings(max_examples=300, deadline=None)
@given(value=_RANDOM, position=st.sampled_from(range(len(POSITIONS))))
def test_a_random_value_in_a_key_value_position_is_redacted(value, position) -> None:
    """A random-looking value of 20+ characters goes whatever its key is called."""
    redacted = redact_args(POSITIONS[position](value))
    assert value not in " ".join(redacted), redacted


@pytest.mark.parametrize("value", [
    "2O76UMFxFkM/R5Kjp1vRt+1fjORS/6ilI8ihN5KX",  # AWS secret access key shape
    "Q9zvXk27LmPq0RtY8wBnA4",
    "9f8Kd2LmQ7xR4tZpW1vN6sYc3HbJ0gUe5aTo",  # Cloudflare-style API token
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
])
def test_generated_credentials_look_random(value: str) -> None:
    """Real-world shapes of generated keys pass the shape test, and go after any key."""
    assert looks_random(value)
    assert redact_args(["env", f"X={value}"]) == ["env", f"X={REDACTED}"]


def test_a_bare_aws_secret_key_is_redacted() -> None:
    """A 40-character base64 word that looks random goes even as a bare argument."""
    key = "2O76UMFxFkM/R5Kjp1vRt+1fjORS/6ilI8ihN5KX"
    assert redact_args(["aws-tool", key, "--region", "eu-west-1"]) == [
        "aws-tool", REDACTED, "--region", "eu-west-1"]


N = 400_000
HOSTILE = {
    "JWT look-alikes": "eyJ-" * (N // 4),
    "SendGrid look-alikes": "SG.-" * (N // 4),
    "sk- runs": "sk-" * (N // 3),
    "digits before a colon": "1" * N + ":",
    "Telegram look-alikes": ("123456789:" + "a" * 29 + " ") * (N // 40),
    "hook URLs": "https://hooks." * (N // 14),
    "random URL path": "https://a/" + "Q9zvXk27LmPq0RtY8wBnA4/" * (N // 23),
    "base64 run": "A" * N,
    "random key=value": "k=Q9zvXk27LmPq0RtY8wBnA4," * (N // 25),
    "npm_ runs": "npm_" * (N // 4),
    "opaque prefixes": "xai-" * (N // 4),
    "long capital flag name": "--" + "A" * N + "=x",
    "long camel flag name": "--" + "Ab" * (N // 2) + "=x",
    "setting verbs": "set " * (N // 16),  # one word in four: its cost is per word
    "age look-alikes": "AGE-SECRET-KEY-1" * (N // 16),
    "query look-alikes": "?a=" * (N // 3),
}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_input_is_redacted_in_linear_time(text: str) -> None:
    """400 kB built to make a pattern backtrack: each takes well under 6 s in every position
    (about a second, loaded; the JWT pattern, quadratic before, took 9 s at half this size)."""
    for args in (["tool", text], ["sh", "-c", text], [text]):
        started = time.perf_counter()
        assert len(redact_args(args)) == len(args)
        assert time.perf_counter() - started < 6.0, len(args)
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 6.0
