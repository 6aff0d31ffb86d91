"""Short flags that carry a password for one program, or one of its subcommands (pure).

``-p`` is a port for ssh and psql, a parent directory for mkdir, a published port for
``docker run``; it is a password for ``sshpass``, ``docker login`` and (attached,
``-pSECRET``) for mysql and 7-Zip.  So these flags are only redacted for the programs
(and subcommands) listed here; everywhere else they are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What the value of a flag is: all secret, a header, ``user:password``, ``user%password``
# (Samba), ``NAME=value`` (a secret literal), or an OpenSSL pass phrase (``pass:value``).
Expect = Literal["secret", "header", "user-password", "user-percent", "assignment",
                 "pass-phrase"]


@dataclass(frozen=True)
class PasswordFlag:
    """A flag that carries a password; ``separate``: may the value be the next argument,
    or only attached (``-pX``)?"""

    flag: str
    separate: bool
    expect: Expect = "secret"


def _flags(*flags: str, separate: bool = True, expect: Expect = "secret"
           ) -> tuple[PasswordFlag, ...]:
    return tuple(PasswordFlag(flag, separate, expect) for flag in flags)


_MYSQL = _flags("-p", separate=False)
_SEPARATE_P = _flags("-p")
_ATTACHED_P = _flags("-p", separate=False)  # 7-Zip and rar: ``-p`` alone asks for it
_CURL = _flags("-u", "-U", "--user", "--proxy-user", expect="user-password")
_SAMBA = _flags("-U", "--user", "--username", expect="user-percent")
_LDAP = _flags("-w")
_OPENSSL = (*_flags("-k"), *_flags("-passin", "-passout", "-pass", expect="pass-phrase"))
_LOGIN = _flags("-p")


def _programs(names: str, flags: tuple[PasswordFlag, ...]) -> dict[str, tuple[PasswordFlag, ...]]:
    return dict.fromkeys(names.split(), flags)


PROGRAM_FLAGS: dict[str, tuple[PasswordFlag, ...]] = {
    **_programs("mysql mysqldump mysqladmin mysqlimport mysqlcheck mysqlshow mysqlslap "
                "mysqlpump mysqlbinlog mariadb mariadb-dump mariadb-admin", _MYSQL),
    **_programs("sshpass mongo mongosh mongodump mongorestore mongoexport mongoimport",
                _SEPARATE_P),
    **_programs("7z 7za 7zr 7zz", _ATTACHED_P),
    **_programs("rar unrar", _flags("-hp", "-p", separate=False)),
    **_programs("zip unzip zipcloak", _flags("-P")),
    **_programs("ldapsearch ldapmodify ldapadd ldapdelete ldapmodrdn ldapcompare ldapwhoami "
                "ldapexop ldapurl", _LDAP),
    "ldappasswd": (*_LDAP, *_flags("-s")),
    **_programs("smbclient rpcclient smbcacls smbget smbtree smbcquotas net winexe", _SAMBA),
    "smbmap": _flags("-p"),
    "openssl": _OPENSSL,
    **_programs("ipmitool sqlcmd bcp", _flags("-P")),
    "rdesktop": _flags("-p"),
    **_programs("xfreerdp wlfreerdp sdl-freerdp", _flags("/p:", separate=False)),
    "redis-cli": _flags("-a"),
    "curl": _CURL,
    "http": _flags("-a", "--auth", expect="user-password"),
    "https": _flags("-a", "--auth", expect="user-password"),
}
# Flags that carry a secret only after a subcommand: ``docker login -p``, ``gh secret set
# --body``.  The subcommand may come anywhere after the program (``helm registry login``).
SUBCOMMAND_FLAGS: dict[tuple[str, str], tuple[PasswordFlag, ...]] = {
    **{(program, "login"): _LOGIN
       for program in ("docker", "podman", "nerdctl", "buildah", "skopeo", "oras", "helm",
                       "finch", "crane")},
    ("gh", "secret"): _flags("-b", "--body"),
    ("kubectl", "secret"): _flags("--from-literal", expect="assignment"),
    ("oc", "secret"): _flags("--from-literal", expect="assignment"),
    ("security", "add-generic-password"): _flags("-w"),
    ("security", "add-internet-password"): _flags("-w"),
}
SUBCOMMANDS = frozenset(sub for _, sub in SUBCOMMAND_FLAGS)
PROGRAMS = frozenset(PROGRAM_FLAGS) | frozenset(program for program, _ in SUBCOMMAND_FLAGS)
# After these words the next word that is not a flag is a setting's name, and the word after
# it its value: ``aws configure set aws_secret_access_key V``, ``git config user.password V``.
SETTING_VERBS = frozenset({"set", "config"})


def program_name(arg: str) -> str:
    """The program an argument names: its base name (``/usr/bin/mysql`` -> ``mysql``).

    >>> program_name("/usr/local/bin/7z"), program_name("docker")
    ('7z', 'docker')
    """
    return arg.rsplit("/", 1)[-1]
