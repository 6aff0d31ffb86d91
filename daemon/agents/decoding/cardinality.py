"""Global caps on the identities agents send (agents, models, tools, sessions), least recently
used evicted first (pure: no clock, no I/O).

What the store remembers per identity (its all-time totals, its stream's sequence number in
memory) is bounded by these caps, not by what a client chooses to send: a flood of new
``service.name`` values, models or sessions pushes out the identities not seen for longest,
and each eviction is counted (``evicted.<kind>``) so it is never silent.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from daemon.agents.decoding.records import Record
from daemon.config.schema import OtlpSettings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Pair = tuple[str, str]


class LruDict(Generic[K, V]):
    """A mapping of at most ``limit`` entries; setting a new key past it evicts the least
    recently set or read one.

    >>> d: LruDict[str, int] = LruDict(2)
    >>> d.put("a", 1), d.put("b", 2), d.get("a")
    ([], [], 1)
    >>> d.put("c", 3)
    ['b']
    >>> sorted(d.keys())
    ['a', 'c']
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        """The value (marking it recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> list[K]:
        """Set ``key`` as the most recently used; returns the keys evicted to make room."""
        self._items[key] = value
        self._items.move_to_end(key)
        evicted = []
        while len(self._items) > self.limit:
            evicted.append(self._items.popitem(last=False)[0])
        return evicted

    def pop(self, key: K) -> None:
        """Forget ``key`` if present."""
        self._items.pop(key, None)

    def keys(self) -> list[K]:
        """Every key, least recently used first."""
        return list(self._items)


@dataclass(frozen=True, slots=True)
class IdentityLimits:
    """How many identities the store remembers: ``models`` and ``tools`` count (agent, model)
    and (agent, tool) pairs; ``sessions`` counts agent streams (instance, session or pid)."""

    agents: int
    models: int
    tools: int
    sessions: int

    @classmethod
    def of(cls, settings: OtlpSettings) -> IdentityLimits:
        """The limits configured in [otlp].

        >>> IdentityLimits.of(OtlpSettings(max_agents=3)).agents
        3
        """
        return cls(settings.max_agents, settings.max_models, settings.max_tools,
                   settings.max_sessions)


@dataclass(slots=True)
class Evicted:
    """Identities one batch pushed out; their totals are deleted with the batch."""

    agents: list[str] = field(default_factory=list)
    models: list[Pair] = field(default_factory=list)
    tools: list[Pair] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Evictions by kind (the ``kind`` label of ``OtlpCounter.EVICTED``)."""
        return {"agents": len(self.agents), "models": len(self.models),
                "tools": len(self.tools)}


def model_of(record: Record) -> str | None:
    """The model a record is about, if any (every record kind with a ``model`` field).

    >>> from daemon.agents.decoding.records import Agent, SessionStart
    >>> model_of(SessionStart(0.0, Agent("a", None, None, None), None, 1)) is None
    True
    """
    model = getattr(record, "model", None)
    return model if isinstance(model, str) else None


def tool_of(record: Record) -> str | None:
    """The tool a record is about, if any."""
    tool = getattr(record, "tool", None)
    return tool if isinstance(tool, str) else None


class IdentityCaps:
    """The agents, (agent, model) and (agent, tool) pairs whose totals are kept.

    >>> from daemon.agents.decoding.records import Agent, SessionStart
    >>> caps = IdentityCaps(IdentityLimits(agents=2, models=9, tools=9, sessions=9))
    >>> batch = [SessionStart(0.0, Agent(n, None, None, None), None, 1) for n in "abc"]
    >>> caps.touch(batch).agents, caps.kept(batch[0]), caps.kept(batch[2])
    (['a'], False, True)
    """

    def __init__(self, limits: IdentityLimits) -> None:
        self.agents: LruDict[str, bool] = LruDict(limits.agents)
        self.models: LruDict[Pair, bool] = LruDict(limits.models)
        self.tools: LruDict[Pair, bool] = LruDict(limits.tools)

    def load(self, agents: Iterable[str], models: Iterable[Pair], tools: Iterable[Pair]
             ) -> Evicted:
        """Take what a store already holds (at open); past a cap, the extras are evicted."""
        evicted = Evicted()
        for agent in agents:
            evicted.agents += self.agents.put(agent, True)
        for pair in models:
            evicted.models += self.models.put(pair, True)
        for pair in tools:
            evicted.tools += self.tools.put(pair, True)
        return evicted

    def touch(self, records: Iterable[Record]) -> Evicted:
        """Mark every identity in ``records`` as just used, evicting past the caps."""
        evicted = Evicted()
        for record in records:
            agent = record.agent.name
            evicted.agents += self.agents.put(agent, True)
            model, tool = model_of(record), tool_of(record)
            if model is not None:
                evicted.models += self.models.put((agent, model), True)
            if tool is not None:
                evicted.tools += self.tools.put((agent, tool), True)
        # An identity evicted and then seen again later in the same batch is kept.
        evicted.agents = [a for a in dict.fromkeys(evicted.agents) if a not in self.agents]
        evicted.models = [p for p in dict.fromkeys(evicted.models) if p not in self.models]
        evicted.tools = [p for p in dict.fromkeys(evicted.tools) if p not in self.tools]
        return evicted

    def kept(self, record: Record) -> bool:
        """Whether a record's identities are all remembered (its totals may be added)."""
        agent = record.agent.name
        if agent not in self.agents:
            return False
        model, tool = model_of(record), tool_of(record)
        if model is not None and (agent, model) not in self.models:
            return False
        return tool is None or (agent, tool) in self.tools
