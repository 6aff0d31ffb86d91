"""The ``NODE_OPTIONS`` flags behind heap-snapshot evidence: written by ``wrap``, read back by
the daemon from a member's ``/proc/PID/environ`` before it may signal that member (pure).

Node reads ``NODE_OPTIONS`` with its own rules (``ParseNodeOptionsEnvVar`` in node's source):
arguments split at spaces, a double-quoted part may hold spaces, and inside quotes a
backslash takes the next character as it is. ``node_options_args`` follows the same rules,
and ``quote`` writes a value so that node reads it back unchanged.
"""

from __future__ import annotations

HEAP_SIGNAL = "SIGUSR2"
SIGNAL_FLAG = "--heapsnapshot-signal"
DIR_FLAG = "--diagnostic-dir"


def quote(value: str) -> str:
    """``value`` as one NODE_OPTIONS argument.

    >>> quote("/s/heap"), quote("/home/a b/heap"), quote('x"y')
    ('/s/heap', '"/home/a b/heap"', '"x\\\\"y"')
    """
    if value and not any(c in value for c in ' "\\'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def heap_flags(heap_dir: str) -> str:
    """Our flags: snapshot on SIGUSR2, written into ``heap_dir``.

    >>> heap_flags("/s/heap")
    '--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/s/heap'
    """
    return f"{SIGNAL_FLAG}={HEAP_SIGNAL} {DIR_FLAG}={quote(heap_dir)}"


def node_options_args(text: str) -> list[str]:
    """The arguments node reads from a NODE_OPTIONS value.

    >>> node_options_args('--a=1  --diagnostic-dir="/home/a b"  --c')
    ['--a=1', '--diagnostic-dir=/home/a b', '--c']
    >>> node_options_args(heap_flags('/x "y"'))
    ['--heapsnapshot-signal=SIGUSR2', '--diagnostic-dir=/x "y"']
    """
    args: list[str] = []
    quoted = False
    new_arg = True
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and quoted and index + 1 < len(text):
            index += 1
            char = text[index]
        elif char == " " and not quoted:
            new_arg = True
            index += 1
            continue
        elif char == '"':
            quoted = not quoted
            index += 1
            continue
        if new_arg:
            args.append(char)
            new_arg = False
        else:
            args[-1] += char
        index += 1
    return args


def asks_heap_snapshots(node_options: str, heap_dir: str) -> bool:
    """Whether node run with this NODE_OPTIONS snapshots on our signal into ``heap_dir``
    (the last of each flag wins, as in node).

    >>> asks_heap_snapshots(heap_flags("/s/heap"), "/s/heap")
    True
    >>> asks_heap_snapshots(heap_flags("/s/heap") + " --heapsnapshot-signal=SIGUSR1", "/s/heap")
    False
    >>> asks_heap_snapshots("--max-old-space-size=64", "/s/heap")
    False
    """
    found: dict[str, str] = {}
    for arg in node_options_args(node_options):
        name, _, value = arg.partition("=")
        if name in (SIGNAL_FLAG, DIR_FLAG):
            found[name] = value
    return found.get(SIGNAL_FLAG) == HEAP_SIGNAL and found.get(DIR_FLAG) == heap_dir
