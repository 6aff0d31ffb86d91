"""The one redaction function: credentials never leave in a report, a metric or a log.

Rules, argument by argument (``redact_args``); docs/security/secrets.md has them in full:

- A flag whose name announces a secret (``--api-key``, ``-password``, ``--client-secret``;
  ``secret_names.names_secret``) loses its ``=value``; without ``=`` it takes the next
  argument whatever it looks like (``--api-key -abc`` too), unless that argument is itself a
  long flag (``--model``).  Names that only describe a secret (``--session-id``,
  ``--token-url``) or switch something off (``--no-session``) are not secret; counting
  names (``--max-tokens``) keep a plain number.
- ``NAME=value`` with a secret NAME loses its value, and so does any ``key=value`` whose
  value looks random (``secret_shapes.looks_random``).  When the argument is a shell
  script (it follows a ``-c``-style flag, as in ``sh -c '...'``, or it is the whole
  command line on its own) it is redacted word by word instead, so only the assignment's
  own value goes and the rest of the command stays readable.
- Header arguments (``-H``/``--header``/``--proxy-header``) named like a secret
  (``X-Api-Key: v``, ``Authorization: v``, ``Cookie: v``) lose their value.
- Short password flags only for the programs where they are one
  (``secret_programs``): ``-pVALUE`` for mysql and 7-Zip, ``-p VALUE`` for sshpass, the
  mongo shells and ``docker login``, ``-w`` for the ldap tools, ``-P`` for zip, ``-U
  user%password`` for Samba, ``-passin pass:VALUE`` for openssl, ``--body`` for ``gh
  secret``, the password of ``-u user:password`` for curl.  Elsewhere ``-p`` (``mkdir -p``,
  ``ssh -p 22``, ``docker run -p 80:80``) is left alone.
- After ``set``/``config`` a setting named like a secret takes the next word as its value
  (``aws configure set aws_secret_access_key V``, ``git config user.password V``).
- Anywhere (``redact_text``): vendor tokens and webhook URLs (``secret_shapes``),
  bearer/basic credentials, URL passwords, secret header values, quoted ``"secret_name":
  "value"`` pairs, ``secret_name=value`` inside longer strings (connection strings, helm
  ``--set``, npm ``:_authToken=``) and PEM blocks.  A value that starts with ``-``
  (``--private-key -----BEGIN``) is still a value: only ``--`` and a letter or digit is a flag.
- Every pattern is linear (possessive quantifiers, no nested ones): a hostile command
  line costs time proportional to its length.  ``redact_command_line`` also caps sizes.

The argument count never changes and redacting twice changes nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from crash_reports.event.secret_names import counts, keeps_value, names_secret
from crash_reports.event.secret_programs import (
    PROGRAM_FLAGS,
    PROGRAMS,
    SETTING_VERBS,
    SUBCOMMAND_FLAGS,
    SUBCOMMANDS,
    Expect,
    PasswordFlag,
    program_name,
)
from crash_reports.event.secret_shapes import REDACTED, looks_random, redact_shapes

_FLAG = re.compile(r"^(--?[A-Za-z0-9][A-Za-z0-9_.-]*)(=(.*))?$", re.S)
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$", re.S)
_WHITESPACE = re.compile(r"\s")
# A long flag starts with a letter or digit after ``--``: ``-----BEGIN`` is a value.
_LONG_FLAG = re.compile(r"^--[A-Za-z0-9]")
_WORD_FLAG = re.compile(r"-[a-z]++")  # a Java or OpenSSL style option: ``-storepass``
# A PEM block (a private key pasted on a command line), to its END line or the end.
_PEM = re.compile(
    r"-----BEGIN[ A-Z0-9]*+-----(?:(?!-----END)[\s\S])*+(?:-----END[ A-Z0-9]*+-----)?+"
)
# ``name=value`` inside a longer string: connection strings (``AccountKey=v;``), helm
# ``--set a.b=v,c.token=v``, npm ``//registry/:_authToken=v``.  The value ends at ``;``,
# ``&``, whitespace, a quote, or a comma that starts the next ``name=``.
_KV_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.\-])([A-Za-z_][A-Za-z0-9_.\-]*+)=((?:[^;&,\s\"']|,(?![A-Za-z_][\w.\-]*+=))++)"
)
_SCRIPT_FLAG = re.compile(r"^-[A-Za-z]*c$")  # sh -c, bash -lc, python -c
_HEADER_FLAGS = frozenset({"-H", "--header", "--proxy-header"})
_SCHEME = r"(?:Bearer|Basic|Token|Digest|Negotiate|NTLM)"
_BEARER = re.compile(rf"\b({_SCHEME})\s+[A-Za-z0-9._~+/=\-]+", re.I)
# ``Name: value`` where Name looks secret; the value runs to a quote, the end of the
# line or a shell operator, so ``-H 'X-Api-Key: v' && next`` keeps ``&& next``.  Names
# are found first and checked in code: a regex that looked for a secret word inside
# the name would backtrack quadratically over a long argument.  Possessive quantifiers
# (``*+``, ``++``) keep every pattern here linear.
_HEADER_NAME = re.compile(r"(?<![\w-])([A-Za-z0-9_-]++):[ \t]++")
_HEADER_VALUE = re.compile(
    rf"(?:{_SCHEME}[ \t]++)?+"
    r"((?:[^\"'\r\n \t]++|[ \t]++(?!(?:&&|\|\|?|;|>>?)(?:[ \t]|$)))++)",
    re.I,
)
# The argument of -H: the whole rest is the value, and no space is needed after ':'.
_HEADER_ARG = re.compile(
    rf"^([\"']?([A-Za-z0-9_-]++):\s*+(?:{_SCHEME}\s++)?+)(.+?)([\"']?)$", re.I | re.S
)
# ``"name": "value"`` in JSON or a Python dict; the name is checked in code.
_QUOTED_PAIR = re.compile(r"([\"'])([^\"'\n]*+)\1(\s*+:\s*+)([\"'])((?:\\.|(?!\4)[^\\])*+)\4")
# An http(s) URL's user part without a password is a key (a Sentry DSN's is).
_URL_USER = re.compile(r"(?<![a-z0-9+.\-])(https?://)([^/\s:@\[\]]++)@", re.I)
# Query parameters whose name looks secret (?api_key=..., &token=...).
_QUERY_PARAM = re.compile(r"([?&])([A-Za-z0-9_.\-]++)=([^&\s#\"']++)")
_URL_PASSWORD = re.compile(r"(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*+://[^/\s:@]*+):[^@\s/]++@", re.I)
# A shell word: unquoted runs, escapes and balanced quotes (a lone quote is one character,
# so an unbalanced string falls back to splitting at whitespace); or an operator.
_SHELL_WORD = re.compile(
    r"""(?:[^\s"'\\;&|<>()]++|\\.|"(?:\\.|[^"\\])*"|'[^']*'|["'\\])+|[;&|<>()]+""", re.S
)
_COMMAND_SEPARATORS = frozenset({"&&", "||", "|", ";", "&", "(", ")"})
_NUMBER = re.compile(r"[0-9]{1,12}")
_SETTING_WORDS = 3

def redact_text(text: str) -> str:
    """Replace token-shaped substrings, credentials, secret headers and URL passwords.

    >>> redact_text("-H 'Authorization: Bearer abc.def' https://u:pw@host/x sk-ant-api03-XYZ1")
    "-H 'Authorization: Bearer [redacted]' https://u:[redacted]@host/x [redacted]"
    >>> redact_text("curl -H 'X-Api-Key: abcd1234' -H 'Accept: json' && echo ok")
    "curl -H 'X-Api-Key: [redacted]' -H 'Accept: json' && echo ok"
    >>> redact_text('{"api_key": "abc", "model": "opus"}')
    '{"api_key": "[redacted]", "model": "opus"}'
    >>> redact_text("see https://abc123@o0.ingest.sentry.io/1 https://x/?api_key=k&page=2")
    'see https://[redacted]@o0.ingest.sentry.io/1 https://x/?api_key=[redacted]&page=2'
    >>> redact_text("AccountName=a;AccountKey=v1;EndpointSuffix=x helm --set db.password=v2,x=1")
    'AccountName=a;AccountKey=[redacted];EndpointSuffix=x helm --set db.password=[redacted],x=1'
    """
    text = _PEM.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _redact_headers(text)
    text = _QUOTED_PAIR.sub(_redact_quoted_pair, text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    text = _URL_USER.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _QUERY_PARAM.sub(_redact_query_param, text)
    text = _KV_PAIR.sub(_redact_kv_pair, text)
    return redact_shapes(text)


def secret_value(name: str, value: str) -> bool:
    """Whether the value of ``name=value`` goes: a secret name, or a random-looking value.

    >>> secret_value("DB_PASSWORD", "x"), secret_value("ref", "Q9zvXk27LmPq0RtY8wBnA4")
    (True, True)
    >>> secret_value("--max-tokens", "4096"), secret_value("model", "claude-opus-4-5-20251101")
    (False, False)
    """
    if value == REDACTED:
        return False
    if names_secret(name):
        return not keeps_value(name, value)
    return looks_random(value)


def _redact_query_param(match: re.Match[str]) -> str:
    if secret_value(match.group(2), match.group(3)):
        return f"{match.group(1)}{match.group(2)}={REDACTED}"
    return match.group(0)


def _redact_kv_pair(match: re.Match[str]) -> str:
    if secret_value(match.group(1), match.group(2)):
        return f"{match.group(1)}={REDACTED}"
    return match.group(0)


def _redact_headers(text: str) -> str:
    """Every ``Secret-Name: value`` in free text loses its value (a scheme word stays)."""
    pieces: list[str] = []
    end = 0
    for name in _HEADER_NAME.finditer(text):
        if name.start() < end or not names_secret(name.group(1)):
            continue  # inside a value already redacted, or an ordinary header
        value = _HEADER_VALUE.match(text, name.end())
        if value is not None:
            pieces += [text[end : value.start(1)], REDACTED]
            end = value.end(1)
    pieces.append(text[end:])
    return "".join(pieces)


def _redact_quoted_pair(pair: re.Match[str]) -> str:
    if not secret_value(pair[2], pair[5]):
        return pair[0]
    return f"{pair[1]}{pair[2]}{pair[1]}{pair[3]}{pair[4]}{REDACTED}{pair[4]}"


MAX_ARG_CHARS = 2048
MAX_COMMAND_LINE_CHARS = 8192
MAX_ARGS = 256


def redact_command_line(args: Sequence[str]) -> list[str]:
    """What a report stores of a command line: redacted, then capped.

    Each argument keeps at most ``MAX_ARG_CHARS`` characters, the whole line at most
    ``MAX_COMMAND_LINE_CHARS`` and ``MAX_ARGS`` arguments; what is cut is replaced by
    a marker saying how much (``…[+N chars]``, ``…[+N more arguments]``).  Redaction
    runs first, on the whole text, so a cut never splits a secret out of a pattern.

    >>> redact_command_line(["x", "a" * 3000])[1][-13:]
    '…[+952 chars]'
    """
    kept: list[str] = []
    total = 0
    redacted = redact_args(args)
    for index, arg in enumerate(redacted):
        room = min(MAX_ARG_CHARS, MAX_COMMAND_LINE_CHARS - total)
        if index >= MAX_ARGS or room <= 0:
            kept.append(f"…[+{len(redacted) - index} more arguments]")
            break
        if len(arg) > room:
            arg = arg[:room] + f"…[+{len(arg) - room} chars]"
        kept.append(arg)
        total += min(len(arg), room)
    return kept


def redact_args(args: Sequence[str]) -> list[str]:
    """Redact a command line, argument by argument (the rules are in the module docstring).

    >>> redact_args(["agent", "--api-key", "abc", "--token=xyz", "--model", "opus"])
    ['agent', '--api-key', '[redacted]', '--token=[redacted]', '--model', 'opus']
    >>> redact_args(["env", "OPENAI_API_KEY=abc", "PATH=/bin", "run"])
    ['env', 'OPENAI_API_KEY=[redacted]', 'PATH=/bin', 'run']
    >>> redact_args(["sh", "-c", "OPENAI_API_KEY=abc python x.py --key=k"])
    ['sh', '-c', 'OPENAI_API_KEY=[redacted] python x.py --key=[redacted]']
    >>> redact_args(["curl", "-u", "me:pw", "-H", "X-Api-Key:abc", "https://h/"])
    ['curl', '-u', 'me:[redacted]', '-H', 'X-Api-Key:[redacted]', 'https://h/']
    >>> redact_args(["mysql", "-uroot", "-ppw", "db", "--api-key", "-dash"])
    ['mysql', '-uroot', '-p[redacted]', 'db', '--api-key', '[redacted]']
    """
    return _Redactor(whole_line=len(args) == 1).run(args)


class _Redactor:
    """Walks one command line, remembering what the previous arguments announced."""

    def __init__(self, whole_line: bool) -> None:
        self.expect: Expect | None = None
        self.keep_number = False  # the announced value may be a count (``--max-tokens 8``)
        self.script_next = whole_line
        self.program = ""
        self.program_flags: tuple[PasswordFlag, ...] = ()
        # After ``set``/``config``: how many more words may name the setting (``--profile p``
        # may stand between the verb and the name).
        self.setting_words = 0

    def run(self, args: Sequence[str]) -> list[str]:
        """Redact every argument in order; the count never changes."""
        return [self.one(arg) for arg in args]

    def one(self, arg: str) -> str:
        """Redact one argument given what came before it."""
        expect, self.expect = self.expect, None
        script, self.script_next = self.script_next, False
        if expect is not None and not (expect == "secret" and _is_flag(arg)):
            if expect == "secret" and self.keep_number and _NUMBER.fullmatch(arg):
                return arg
            return _expected_value(expect, arg)
        self._follow_program(arg)
        program = self._program_flag(arg)
        if program is not None:
            return program
        flag = _FLAG.match(arg)
        if flag:
            return self._flag(arg, flag.group(1), flag.group(3))
        if self.setting_words:
            self.setting_words -= 1
            if names_secret(arg) and "=" not in arg:
                self.expect, self.keep_number, self.setting_words = "secret", counts(arg), 0
                return redact_text(arg)
        if arg in SETTING_VERBS:
            self.setting_words = _SETTING_WORDS
        if script and _WHITESPACE.search(arg):
            return _redact_script(arg)
        assignment = _ASSIGNMENT.match(arg)
        if assignment and secret_value(assignment.group(1), assignment.group(2)):
            return f"{assignment.group(1)}={REDACTED}"
        return _redact_script(arg) if _WHITESPACE.search(arg) else redact_text(arg)

    def _follow_program(self, arg: str) -> None:
        """Which program (and subcommand) the flags that follow belong to."""
        if arg in _COMMAND_SEPARATORS or arg.endswith(";"):
            self.program, self.program_flags, self.setting_words = "", (), 0
            return
        name = program_name(arg)
        if name in PROGRAMS:
            self.program, self.program_flags = name, PROGRAM_FLAGS.get(name, ())
        elif arg in SUBCOMMANDS and (self.program, arg) in SUBCOMMAND_FLAGS:
            self.program_flags = SUBCOMMAND_FLAGS[(self.program, arg)]

    def _program_flag(self, arg: str) -> str | None:
        for spec in self.program_flags:
            if arg == spec.flag and spec.separate:
                self.expect, self.keep_number = spec.expect, False
                return arg
            # Long flags take ``--user=value``; short ones ``-pvalue``.
            prefix = spec.flag + "=" if spec.flag.startswith("--") else spec.flag
            if arg.startswith(prefix) and len(arg) > len(prefix):
                return prefix + _expected_value(spec.expect, arg[len(prefix) :])
        return None

    def _flag(self, arg: str, name: str, value: str | None) -> str:
        if names_secret(name):
            if value is not None:
                return arg if keeps_value(name, value) else f"{name}={REDACTED}"
            self.expect, self.keep_number = "secret", counts(name)
            return arg
        if name in _HEADER_FLAGS:
            if value is None:
                self.expect = "header"
                return arg
            return f"{name}={_expected_value('header', value)}"
        self.script_next = value is None and _SCRIPT_FLAG.match(name) is not None
        if value is not None and _WHITESPACE.search(value):
            return f"{name}={_redact_script(value)}"
        if value is not None and looks_random(value):
            return f"{name}={REDACTED}"
        return redact_text(arg)


def _is_flag(arg: str) -> bool:
    """Whether an argument after a secret flag is a flag rather than its value: a long flag
    (``--model``), or one that names a secret itself (``-importkeystore -srcstorepass``)."""
    return bool(_LONG_FLAG.match(arg) or (_WORD_FLAG.fullmatch(arg) and names_secret(arg)))


_PASS_SOURCES = ("env:", "file:", "fd:")


def _expected_value(expect: Expect, value: str) -> str:
    """The value a previous flag announced: all secret, a header, ``user:password``,
    ``user%password``, ``NAME=secret`` or an OpenSSL pass phrase (``pass:secret``)."""
    if expect == "secret":
        return REDACTED
    if expect in ("user-password", "user-percent"):
        user, mark, _ = value.partition(":" if expect == "user-password" else "%")
        return f"{user}{mark}{REDACTED}" if mark else redact_text(value)
    if expect == "assignment":
        name, equals, _ = value.partition("=")
        return f"{name}={REDACTED}" if equals else REDACTED
    if expect == "pass-phrase":
        if value == "stdin" or value.startswith(_PASS_SOURCES):
            return value
        return "pass:" + REDACTED if value.startswith("pass:") else REDACTED
    header = _HEADER_ARG.match(value)
    if header and names_secret(header.group(2)):
        return header.group(1) + REDACTED + header.group(4)
    return redact_text(value)


def _redact_script(text: str) -> str:
    """A whole command in one argument (``sh -c '... --api-key X'``): redact it word by word."""
    text = redact_text(text)
    words = list(_SHELL_WORD.finditer(text))
    if len(words) == 1 and words[0].group() == text:
        # One quoted word: look inside the quotes; anything else has no words to split.
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            return text[0] + _redact_script(text[1:-1]) + text[0]
        return text
    redactor = _Redactor(whole_line=False)
    pieces: list[str] = []
    end = 0
    for word in words:
        pieces += [text[end : word.start()], redactor.one(word.group())]
        end = word.end()
    pieces.append(text[end:])
    return "".join(pieces)


MAX_CACHED_NAME_CHARS = 256


@lru_cache(maxsize=4096)
def _redact_short(text: str) -> str:
    return redact_text(text)


def redact_name(text: str) -> str:
    """A name from outside (a process, an agent, a model, a tool, a session) as it may be
    stored or shown: ``redact_text``, remembered for short names, which repeat.

    >>> redact_name("claude-opus-4-5-20251101"), redact_name("sk-ant-api03-abcdefghijkl")
    ('claude-opus-4-5-20251101', '[redacted]')
    """
    if len(text) <= MAX_CACHED_NAME_CHARS:
        return _redact_short(text)
    return redact_text(text)
