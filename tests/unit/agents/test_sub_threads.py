"""The in-process sub-thread rule: a Codex terminal UI's thread_title sub-thread is its
session's, never a second session; everything else stays as it came."""

from __future__ import annotations

from daemon.agents.decoding.attributes import agent_of
from daemon.agents.decoding.records import Agent, ApiRequest, Record, SessionStart, TokenUsage
from daemon.agents.linking.sub_threads import WINDOW_SECONDS, SubThreads

MODEL = "gpt-6.2-sol"


def tui(pid: int | None, service: str = "codex_cli_rs") -> Agent:
    return Agent("codex", None, None, pid, service=service, version="0.171.0")


def turn(agent: Agent, conversation: str, ts: float) -> list[Record]:
    """What one conversation sends: its start, one request and the request's tokens."""
    return [SessionStart(ts, agent, conversation, 1, "event"),
            ApiRequest(ts + 1, agent, conversation, MODEL, 1, 24.0, source="event"),
            TokenUsage(ts + 1.5, agent, conversation, MODEL, "input", 700, "event", requests=1)]


def sessions(records: list[Record]) -> list[str | None]:
    return [r.session_id for r in records]


def test_a_sub_thread_started_just_after_the_prompt_is_its_parents_session() -> None:
    """The title thread's request and tokens carry the parent's session id, and its own
    conversation start is no session start."""
    agent = tui(4242)
    out = SubThreads().apply([*turn(agent, "parent", 100.0), *turn(agent, "title", 103.0)])
    assert sessions(out) == ["parent"] * 5
    assert sum(r.count for r in out if isinstance(r, SessionStart)) == 1
    assert [type(r).__name__ for r in out[3:]] == ["ApiRequest", "TokenUsage"]


def test_the_sub_thread_stays_merged_in_later_batches() -> None:
    """Once known, the sub-thread's records are put on the parent however late they come."""
    rule, agent = SubThreads(), tui(4242)
    rule.apply(turn(agent, "parent", 100.0) + turn(agent, "title", 104.0))
    later = rule.apply([ApiRequest(900.0, agent, "title", MODEL, 1, 5.0, source="event")])
    assert sessions(later) == ["parent"]


def test_the_agents_own_session_id_moves_with_the_record() -> None:
    """A record whose agent named the sub-thread's session names the parent's afterwards."""
    rule = SubThreads()
    rule.apply(turn(tui(7), "parent", 0.0))
    agent = Agent("codex", None, "title", 7, service="codex_cli_rs")
    [moved] = rule.apply([ApiRequest(2.0, agent, "title", MODEL, 1, 5.0)])
    assert (moved.session_id, moved.agent.session_id, moved.agent.pid) == ("parent", "parent", 7)


def test_a_second_process_is_a_second_session() -> None:
    """Two terminal UIs (two pids) each keep their own session, however close in time."""
    rule = SubThreads()
    out = rule.apply([*turn(tui(1001), "first", 100.0), *turn(tui(1002), "second", 101.0)])
    assert sessions(out) == ["first"] * 3 + ["second"] * 3


def test_a_new_conversation_after_a_quiet_pause_is_a_new_session() -> None:
    """/new after the window: a session of its own, and the process's primary from then on."""
    rule, agent = SubThreads(), tui(4242)
    rule.apply(turn(agent, "first", 100.0))
    out = rule.apply([*turn(agent, "second", 101.5 + WINDOW_SECONDS + 1),
                      *turn(agent, "second-title", 105.0 + WINDOW_SECONDS + 1)])
    assert sessions(out) == ["second"] * 5


def test_a_conversation_resumed_later_is_not_a_sub_thread() -> None:
    """A conversation the process had as its primary before comes back as itself."""
    rule, agent = SubThreads(), tui(4242)
    rule.apply(turn(agent, "first", 0.0))
    rule.apply(turn(agent, "second", 100.0))
    assert sessions(rule.apply(turn(agent, "first", 102.0))) == ["first"] * 3


def test_without_a_known_pid_nothing_is_merged() -> None:
    """No process.pid and no sender found: every conversation stays its own session."""
    out = SubThreads().apply([*turn(tui(None), "parent", 100.0),
                              *turn(tui(None), "title", 103.0)])
    assert sessions(out) == ["parent"] * 3 + ["title"] * 3


def test_codex_exec_and_the_app_server_are_left_alone() -> None:
    """Only the terminal UI runs its sub-threads in-process: codex exec and the app server
    (which serves several windows) keep each conversation apart."""
    for service in ("codex_exec", "codex-app-server"):
        out = SubThreads().apply([*turn(tui(9, service), "one", 100.0),
                                  *turn(tui(9, service), "two", 102.0)])
        assert sessions(out) == ["one"] * 3 + ["two"] * 3, service


def test_records_without_a_session_pass_as_they_are() -> None:
    """Codex's metric points carry no conversation id: untouched, the same objects."""
    point = TokenUsage(1.0, tui(5), None, MODEL, "input", 10)
    assert SubThreads().apply([point])[0] is point


def test_the_maps_stay_within_their_caps() -> None:
    """A flood of processes and sub-threads never grows the maps past their caps, and the
    most recently seen process still works."""
    rule = SubThreads(max_processes=8, max_aliases=16)
    for pid in range(1, 200):
        rule.apply(turn(tui(pid), f"p{pid}", float(pid)))
        for n in range(3):
            rule.apply(turn(tui(pid), f"p{pid}-sub{n}", float(pid) + 1))
    assert rule.sizes == (8, 16)
    later = rule.apply([ApiRequest(200.5, tui(199), "p199-sub2", MODEL, 1, 1.0)])
    assert sessions(later) == ["p199"]


def test_the_sender_pid_lets_two_processes_be_told_apart() -> None:
    """Codex sends no process.pid: with the sender's pid the decoder puts on its agent, a
    sub-thread is merged into its own process's session and not into another's."""
    rule = SubThreads()
    resource = {"service.name": "codex_cli_rs", "service.version": "0.171.0"}
    a, b = agent_of(resource, 1001), agent_of(resource, 1002)
    out = rule.apply([*turn(a, "A", 100.0), *turn(b, "B", 100.5), *turn(a, "A-title", 103.0)])
    assert sessions(out) == ["A"] * 3 + ["B"] * 3 + ["A"] * 2
