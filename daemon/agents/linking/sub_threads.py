"""Sub-threads an agent runs inside its own process, put back on their session (pure).

The Codex terminal UI starts a ``thread_title`` sub-thread with a conversation id of its own
for each session, right after the user's first prompt, in the same process (Codex names
such threads ``subagent_<x>`` in its ``SessionSource``, but 0.171.0 puts that on metric
points only, which carry no conversation id). Counted as it comes, one terminal session
would be two. So, for the agents whose process is known to run sub-threads in-process
(``SUB_THREAD_SERVICES``; not ``codex exec``, and not the app server, which serves several
windows at once), per agent and process:

* the first conversation seen is the process's primary, and each of its records marks it
  active;
* a conversation first seen while the primary was active within ``WINDOW_SECONDS`` is a
  sub-thread: its records carry the primary's session id from then on, and its own
  session start is not a session;
* any other new conversation (a ``/new`` session after a quiet pause) becomes the primary.

Only records whose process is known (``Agent.pid``: the resource's ``process.pid`` or the
sender the receiver found) are looked at; without it nothing is merged. Times are the
records' own; there is no clock here. Processes and aliases are kept in LRU maps of fixed
size, so memory stays bounded whatever the senders do.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.agents.decoding.records import Agent, Record, SessionStart

# service.name of agents whose process runs sub-threads with conversation ids of their own.
SUB_THREAD_SERVICES = frozenset({"codex_cli_rs", "codex-tui"})
# A new conversation this soon after the primary's last record is one of its sub-threads.
WINDOW_SECONDS = 30.0
MAX_PROCESSES = 1024
MAX_ALIASES = 4096
MAX_KNOWN_PER_PROCESS = 16

ProcessKey = tuple[str, int]  # (agent name, pid)


@dataclass(slots=True)
class _Process:
    primary: str
    last_active: float
    # Conversations this process had as its primary, with the time of the last record of
    # each (a resumed one is not a sub-thread; a late record does not make it the primary).
    known: OrderedDict[str, float] = field(default_factory=OrderedDict)


class SubThreads:
    """Session ids of in-process sub-threads mapped onto their primary's (see the module).

    >>> from daemon.agents.decoding.records import ApiRequest
    >>> tui = Agent("codex", None, None, 4242, service="codex_cli_rs")
    >>> rule = SubThreads()
    >>> out = rule.apply([SessionStart(100.0, tui, "parent", 1),
    ...                   SessionStart(103.0, tui, "title", 1),
    ...                   ApiRequest(104.0, tui, "title", "gpt-6.2-sol", 1, 24.0)])
    >>> [(type(r).__name__, r.session_id) for r in out]
    [('SessionStart', 'parent'), ('ApiRequest', 'parent')]
    >>> [r.session_id for r in rule.apply([SessionStart(200.0, tui, "after-new", 1)])]
    ['after-new']
    """

    def __init__(self, window_seconds: float = WINDOW_SECONDS,
                 max_processes: int = MAX_PROCESSES, max_aliases: int = MAX_ALIASES) -> None:
        self.window_seconds = window_seconds
        self.max_processes = max_processes
        self.max_aliases = max_aliases
        self._processes: OrderedDict[ProcessKey, _Process] = OrderedDict()
        self._aliases: OrderedDict[tuple[str, int, str], str] = OrderedDict()

    @property
    def sizes(self) -> tuple[int, int]:
        """Processes and aliases remembered (both capped)."""
        return len(self._processes), len(self._aliases)

    def apply(self, records: Sequence[Record]) -> list[Record]:
        """The records with sub-threads' session ids replaced by their primary's; a
        sub-thread's own session start is left out (it starts no session)."""
        out: list[Record] = []
        agents: dict[tuple[int, str], Agent] = {}
        for record in records:
            agent, conversation = record.agent, record.session_id
            if (conversation is None or agent.pid is None
                    or agent.service not in SUB_THREAD_SERVICES):
                out.append(record)
                continue
            session = self.session_of(agent.name, agent.pid, conversation, record.ts)
            if session == conversation:
                out.append(record)
            elif not isinstance(record, SessionStart):
                out.append(_moved(record, session, agents))
        return out

    def session_of(self, agent: str, pid: int, conversation: str, ts: float) -> str:
        """The session a conversation of one process belongs to, seen at ``ts``.

        >>> rule = SubThreads(window_seconds=30.0)
        >>> [rule.session_of("codex", 7, c, t) for c, t in
        ...  [("a", 0.0), ("b", 5.0), ("c", 90.0), ("a", 95.0), ("b", 96.0)]]
        ['a', 'a', 'c', 'a', 'a']

        A late record of an earlier conversation (sent after a newer one began) leaves the
        newer one the primary, so the newer one's sub-thread is still its own:

        >>> rule = SubThreads(window_seconds=30.0)
        >>> [rule.session_of("codex", 7, c, t) for c, t in
        ...  [("a", 0.0), ("b", 100.0), ("a", 99.0), ("t", 101.0)]]
        ['a', 'b', 'a', 'b']
        """
        alias = self._aliases.get((agent, pid, conversation))
        key = (agent, pid)
        process = self._processes.get(key)
        if process is not None:
            self._processes.move_to_end(key)
        if alias is not None:
            self._aliases.move_to_end((agent, pid, conversation))
            if process is not None and process.primary == alias:
                process.last_active = max(process.last_active, ts)
            return alias
        if process is None:
            self._remember(key, _Process(conversation, ts))
            self._processes[key].known[conversation] = ts
            return conversation
        if conversation == process.primary:
            process.last_active = max(process.last_active, ts)
            return conversation
        last = process.known.get(conversation)
        if last is None and ts - process.last_active <= self.window_seconds:
            self._aliases[(agent, pid, conversation)] = process.primary
            while len(self._aliases) > self.max_aliases:
                self._aliases.popitem(last=False)
            process.last_active = max(process.last_active, ts)
            return process.primary
        process.known[conversation] = ts if last is None else max(last, ts)
        process.known.move_to_end(conversation)
        while len(process.known) > MAX_KNOWN_PER_PROCESS:
            process.known.popitem(last=False)
        if ts >= process.last_active:  # the newest conversation of the process leads
            process.known[process.primary] = process.last_active
            process.primary, process.last_active = conversation, ts
        return conversation

    def _remember(self, key: ProcessKey, process: _Process) -> None:
        self._processes[key] = process
        while len(self._processes) > self.max_processes:
            self._processes.popitem(last=False)


def _moved(record: Record, session: str, agents: dict[tuple[int, str], Agent]) -> Record:
    """The record under another session id (its agent too when it named the old one)."""
    agent = record.agent
    if agent.session_id == record.session_id:
        key = (id(agent), session)
        moved = agents.get(key)
        if moved is None:
            moved = agents[key] = dataclasses.replace(agent, session_id=session)
        agent = moved
    return dataclasses.replace(record, session_id=session, agent=agent)
