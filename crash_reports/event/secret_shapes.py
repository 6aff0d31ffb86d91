"""Secrets known by their shape, wherever they stand in a text (pure).

- Tokens with a vendor prefix (``ghp_``, ``npm_``, ``hvs.``, ``SG.``, ``ya29.``,
  ``AGE-SECRET-KEY-1``, ``dapi``, ``shpat_``, ``dop_v1_``, ...): the whole token goes.
- Webhook URLs: a URL whose host or a path segment names a hook (Slack's
  ``hooks.slack.com``, Discord's ``/api/webhooks/``, Teams' ``webhook.office.com``) keeps
  its scheme, host and the path up to the hook; the rest is the credential.  Telegram bot
  tokens (``<digits>:<35 characters>``) go wherever they appear.
- Random-looking values (``looks_random``): a URL path segment, and a 40-character
  base64 word standing alone (an AWS secret access key); ``redact.py`` also applies it to
  every ``key=value`` value.

Every pattern is linear: each starts after a character that cannot precede it and uses
possessive repeats, so a long run of look-alike characters is scanned once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

REDACTED = "[redacted]"
# Vendor prefixes, each with the body that follows it.  A token must not continue a word.
_PREFIXED_TOKENS = [
    r"sk-[A-Za-z0-9_\-]{8,}+",  # OpenAI, Anthropic, OpenRouter
    r"(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{16,}+",  # GitHub
    r"(?:xox[abposre]|xapp)-[A-Za-z0-9-]{8,}+",  # Slack
    r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])",  # AWS access key ids
    r"AIza[0-9A-Za-z_\-]{30,}+",  # Google API keys
    r"ya29\.[A-Za-z0-9_\-]{16,}+",  # Google OAuth access tokens
    r"1//0[A-Za-z0-9_\-]{20,}+",  # Google OAuth refresh tokens
    r"GOCSPX-[A-Za-z0-9_\-]{16,}+",  # Google OAuth client secrets
    r"(?:[rs]k|whsec)_(?:live|test)_[A-Za-z0-9]{8,}+|whsec_[A-Za-z0-9]{16,}+",  # Stripe
    r"hf_[A-Za-z0-9]{20,}+",  # Hugging Face
    r"gl(?:pat|dt|rt|ptt|soat|cbt|oas)-[A-Za-z0-9_\-]{16,}+",  # GitLab
    r"npm_[A-Za-z0-9]{30,}+",  # npm
    r"pypi-AgE[A-Za-z0-9_\-]{40,}+",  # PyPI (a macaroon for pypi.org or test.pypi.org)
    r"hv[sbr]\.[A-Za-z0-9_\-]{20,}+",  # HashiCorp Vault
    r"SG\.[A-Za-z0-9_\-]{16,}+\.[A-Za-z0-9_\-]{16,}+",  # SendGrid
    r"AGE-SECRET-KEY-1[0-9A-Z]{50,}+",  # age
    r"SK[0-9a-fA-F]{32}(?![0-9A-Za-z])",  # Twilio API keys
    r"dapi[0-9a-f]{32}(?:-[0-9]++)?+",  # Databricks
    r"shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}",  # Shopify
    r"do[opr]_v1_[0-9a-f]{64}",  # DigitalOcean
    r"dckr_pat_[A-Za-z0-9_\-]{20,}+",  # Docker Hub
    r"tskey-[A-Za-z0-9_\-]{20,}+",  # Tailscale
    r"ATATT3[A-Za-z0-9_\-=]{20,}+",  # Atlassian
    r"dp\.(?:st|ct|sa|scim|audit)\.[A-Za-z0-9_\-.]{20,}+",  # Doppler
    r"pul-[0-9a-f]{40}",  # Pulumi
    r"key-[0-9a-f]{32}(?![0-9A-Za-z])",  # Mailgun
    r"sq0(?:atp|csp)-[A-Za-z0-9_\-]{20,}+",  # Square
]
_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(_PREFIXED_TOKENS) + ")")
# A JWT: three base64url parts.  It starts where no part could have, so a failed attempt's
# scan never covers the start of the next one (``eyJ-eyJ-...`` stays linear).
_JWT = re.compile(
    r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+")
# Shorter prefixes that model and package names could start with too (``xai-grok-4-fast``):
# their body must hold no dash, or look random.
_OPAQUE_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?:gsk|r8|xai|pplx|lin_api|sntry[su]|glsa|glc|sbp|nfp|fo1|figd|ntn"
    r"|bkua|PMAK|NRAK)[_-]([A-Za-z0-9_\-]{20,}+)")
# A Telegram bot token: the bot's number, a colon, 30+ characters (``bot<token>`` in URLs).
_TELEGRAM = re.compile(r"(?<![0-9])[0-9]{6,12}:[A-Za-z0-9_\-]{30,}+")
# A URL, scheme to the first character that cannot be in one.
_URL = re.compile(r"(?<![A-Za-z0-9+.\-])[a-z][a-z0-9+.\-]*+://[^\s\"'<>`]++", re.I)
# A host label or path segment that names a hook: hooks.slack.com, /api/webhooks/, webhookb2.
_HOOK = re.compile(r"(?:web)?hooks?(?:b2)?", re.I)
# A bare 40-character base64 word, the shape of an AWS secret access key.
_BASE64_40 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
_RUNS = re.compile(r"[A-Z]++|[a-z]++|[0-9]++")
_SEPARATORS = re.compile(r"[-._/]")
_WORDS = re.compile(r"[A-Z][a-z]{2,}+|[a-z]{3,}+|[A-Z]{4,}+")


def looks_random(text: str) -> bool:
    """Whether ``text`` looks like a generated credential rather than a name people wrote.

    At least 20 characters mixing capitals, small letters and digits, few separators
    (``-._/``, at most one per 16 characters and one more), and less than 60 % of its letters
    in word-like runs (a capital and two or more small letters, three or more small letters,
    four or more capitals).  ``benchmarks/bench_redaction.py`` measured no false positive
    over 95,643 non-secrets (model ids, recorded agent command lines, file names under /usr,
    identifiers from the Python standard library) and 77-93 % of random base62/base64
    tokens of 20-64 characters caught.

    >>> looks_random("Q9zvXk27LmPq0RtY8wBnA4"), looks_random("Qwen3-Coder-480B-A35B-Instruct")
    (True, False)
    >>> looks_random("0b8f3c4e-2a51-4d07-9b36-5f1e7a2c9d40"), looks_random("MiniMaxAI/MiniMax-M1")
    (False, False)
    """
    if len(text) < 20 or len(text) > 4096:
        return False
    if len(_SEPARATORS.findall(text)) > 1 + len(text) // 16:
        return False
    letters = digits = 0
    upper = lower = False
    for run in _RUNS.findall(text):
        if run[0].isdigit():
            digits += len(run)
        else:
            letters += len(run)
            upper = upper or run[0].isupper()
            lower = lower or run[0].islower()
    if letters + digits < 16 or not (digits and upper and lower):
        return False
    worded = sum(len(word) for word in _WORDS.findall(text))
    return worded * 10 < letters * 6


def redact_shapes(text: str) -> str:
    """Replace vendor tokens, webhook URLs' credentials and random URL path segments.

    >>> redact_shapes("post https://hooks.slack.com/services/T0A1B2C3/B0D4E5F6/x1Y2z3 now")
    'post https://hooks.slack.com/[redacted] now'
    >>> redact_shapes("vault login hvs.CAESIJ1x2y3z4a5b6c7d8e9f0g1h2")
    'vault login [redacted]'
    >>> redact_shapes("https://example.com/api/Q9zvXk27LmPq0RtY8wBnA4/items?page=2")
    'https://example.com/api/[redacted]/items?page=2'
    """
    text = _TOKEN.sub(REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _OPAQUE_TOKEN.sub(_opaque, text)
    text = _TELEGRAM.sub(REDACTED, text)
    text = _URL.sub(_redact_url, text)
    return _BASE64_40.sub(_if_random(lambda m: REDACTED), text)


def _opaque(match: re.Match[str]) -> str:
    body = match.group(1)
    return REDACTED if "-" not in body or looks_random(body) else match.group()


def _if_random(replace: Callable[[re.Match[str]], str]) -> Callable[[re.Match[str]], str]:
    def choose(match: re.Match[str]) -> str:
        return replace(match) if looks_random(match.group()) else match.group()
    return choose


def _redact_url(match: re.Match[str]) -> str:
    """A webhook URL loses what follows its hook; any URL loses random path segments."""
    url = match.group()
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not slash:
        return url
    path, mark, tail = _split_path(path)
    if any(_HOOK.fullmatch(label) for label in authority.split(".")):
        return f"{scheme}://{authority}/{REDACTED}" if path or tail else url
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if _HOOK.fullmatch(segment):
            kept = "/".join(segments[: index + 1])
            return f"{scheme}://{authority}/{kept}/{REDACTED}" if index + 1 < len(segments) \
                else url
    cleaned = "/".join(REDACTED if looks_random(s) else s for s in segments)
    return f"{scheme}://{authority}/{cleaned}{mark}{tail}"


def _split_path(path: str) -> tuple[str, str, str]:
    """A URL path apart from its query or fragment (``?``/``#`` and what follows)."""
    for index, char in enumerate(path):
        if char in "?#":
            return path[:index], char, path[index + 1 :]
    return path, "", ""
