"""The sending process onto records that name none (pure).

Claude Code and Codex send no ``process.pid`` resource attribute. When the receiver found the
sending process from the loopback socket (``[otlp] trust = "watched"``), its pid is the
records' pid: reports then match them by pid, and rules that need the process
(``sub_threads.py``) can tell two processes of one agent apart. A pid the resource carries
is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from daemon.agents.decoding.records import Agent, Record


def with_sender_pid(records: Sequence[Record], pid: int | None) -> list[Record]:
    """The records, those whose agent has no pid given ``pid`` (one new Agent per distinct
    Agent object, not one per record).

    >>> from daemon.agents.decoding.records import SessionStart
    >>> codex, gemini = Agent("codex", None, None, None), Agent("gemini", None, None, 31048)
    >>> out = with_sender_pid([SessionStart(1.0, codex, "c", 1),
    ...                        SessionStart(2.0, codex, "c", 1),
    ...                        SessionStart(3.0, gemini, "g", 1)], 4242)
    >>> [r.agent.pid for r in out], out[0].agent is out[1].agent
    ([4242, 4242, 31048], True)
    """
    if pid is None:
        return list(records)
    replaced: dict[int, Agent] = {}
    out: list[Record] = []
    for record in records:
        agent = record.agent
        if agent.pid is not None:
            out.append(record)
            continue
        given = replaced.get(id(agent))
        if given is None:
            given = replaced[id(agent)] = dataclasses.replace(agent, pid=pid)
        out.append(dataclasses.replace(record, agent=given))
    return out
