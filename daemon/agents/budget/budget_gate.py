"""Whether an agent or a session may go on spending: the pure decision behind ``budget check``.

The shell (``daemon.cli.budget``) reads the spend from the event store; this module only
decides which limits apply and whether any is spent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple, Protocol

Scope = Literal["session", "daily", "monthly"]


class BudgetLimits(Protocol):
    """The fields of a ``[[budget]]`` table this module reads (``config.schema.BudgetRule``)."""

    @property
    def agent(self) -> str: ...
    @property
    def daily_usd(self) -> float | None: ...
    @property
    def monthly_usd(self) -> float | None: ...
    @property
    def session_usd(self) -> float | None: ...


class Limit(NamedTuple):
    """One limit that applies; ``agent`` is the rule's (``"*"``: all agents together).

    NamedTuples here, not dataclasses: this runs on every tool call (see ``cli.budget``).
    """

    scope: Scope
    agent: str
    limit_usd: float


class Verdict(NamedTuple):
    """The answer: ``over`` with the reason naming the most spent limit."""

    over: bool
    reason: str


def limits_for(
    rules: Iterable[BudgetLimits], agents: Iterable[str] | None, session: bool
) -> list[Limit]:
    """Limits that apply to ``agents`` (``None``: every rule) and, for a session, its limits.

    A ``"*"`` rule applies to every agent: its daily and monthly limits cap all agents
    together, as the daemon's budget check counts them; its session limit caps any session.

    >>> from types import SimpleNamespace as R
    >>> rules = [R(agent="*", daily_usd=None, monthly_usd=50.0, session_usd=None),
    ...          R(agent="bot", daily_usd=None, monthly_usd=None, session_usd=2.0),
    ...          R(agent="cli", daily_usd=5.0, monthly_usd=None, session_usd=None)]
    >>> [(x.scope, x.agent) for x in limits_for(rules, ["bot"], session=True)]
    [('monthly', '*'), ('session', 'bot')]
    >>> [(x.scope, x.agent) for x in limits_for(rules, None, session=False)]
    [('monthly', '*'), ('daily', 'cli')]
    """
    wanted = None if agents is None else set(agents)
    found: list[Limit] = []
    for rule in rules:
        if wanted is not None and rule.agent != "*" and rule.agent not in wanted:
            continue
        candidates: list[tuple[Scope, float | None]] = [
            ("daily", rule.daily_usd),
            ("monthly", rule.monthly_usd),
        ]
        if session:
            candidates.append(("session", rule.session_usd))
        found.extend(Limit(scope, rule.agent, usd) for scope, usd in candidates if usd is not None)
    return found


def session_agents(agent: str | None, explicit: bool, session: str | None,
                   seen: Iterable[str]) -> list[str] | None:
    """Whose daily and monthly budgets apply (``None``: every rule's).

    An explicit ``--agent`` names the one agent. Otherwise a session answers for the agent
    its hook names and for every agent seen under its id, so a session that has sent
    nothing yet still meets its agent's daily budget.

    >>> session_agents("bot", True, "s", ["other"])
    ['bot']
    >>> session_agents("claude-code", False, "new", [])
    ['claude-code']
    >>> session_agents(None, False, "s", ["b", "a"]), session_agents(None, False, None, [])
    (['a', 'b'], None)
    """
    if agent is not None and explicit:
        return [agent]
    if session is None:
        return [agent] if agent is not None else None
    return sorted(set(seen) | ({agent} if agent is not None else set()))


def decide(spent_usd: Mapping[Limit, float], session_id: str | None = None) -> Verdict:
    """Over budget when any limit's spend reached it; the reason names that limit.

    >>> a = Limit("session", "bot", 2.0)
    >>> decide({a: 2.5}, "s-1")
    Verdict(over=True, reason='session s-1 (bot) spent 2.50 USD of its 2.00 USD session budget')
    >>> decide({a: 0.5}, "s-1").over, decide({}).reason
    (False, 'within budget (no budget applies)')
    """
    over = [(limit, usd) for limit, usd in spent_usd.items() if usd >= limit.limit_usd]
    if over:
        limit, usd = max(over, key=lambda pair: pair[1] / pair[0].limit_usd)
        who = _who(limit, session_id)
        return Verdict(
            True,
            f"{who} spent {usd:.2f} USD of its {limit.limit_usd:.2f} USD {limit.scope} budget",
        )
    if not spent_usd:
        return Verdict(False, "within budget (no budget applies)")
    limit, usd = max(spent_usd.items(), key=lambda pair: pair[1] / pair[0].limit_usd)
    return Verdict(
        False,
        f"within budget: {_who(limit, session_id)} at {usd:.2f} of "
        f"{limit.limit_usd:.2f} USD ({limit.scope})",
    )


def _who(limit: Limit, session_id: str | None) -> str:
    agent = "all agents" if limit.agent == "*" else limit.agent
    if limit.scope == "session":
        return f"session {session_id} ({agent})"
    return agent
