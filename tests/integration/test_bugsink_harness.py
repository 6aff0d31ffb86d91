"""The Bugsink harness: a real Sentry-compatible server that stores what sentry-sdk builds."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.utils import Dsn

from tests.support.bugsink import (
    BugsinkProject,
    BugsinkServer,
    BugsinkTemplate,
    cached_template,
    load_template,
    normalize_event_id,
)

pytestmark = pytest.mark.bugsink

TAGS = {"watch": "agent-alpha", "threshold": "rss_critical"}
CONTEXTS = {"process": {"pid": 4242, "rss_bytes": 2_147_483_648, "cmdline": "python agent.py"}}
EXCEPTION_TYPE = "MemoryThresholdExceeded"
EXCEPTION_VALUE = "agent-alpha rss 2.0 GiB crossed critical 1.5 GiB"


class CapturingTransport(Transport):
    """Keeps every envelope sentry-sdk hands over, serialized, instead of sending it."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        """Start with no envelopes."""
        super().__init__(options)
        self.envelopes: list[bytes] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        """Store the envelope's wire bytes."""
        self.envelopes.append(envelope.serialize())


def build_envelope(dsn: str, event_id: str, fingerprint: list[str] | None = None) -> bytes:
    """An envelope sentry-sdk built, with a fixed event_id, tags, contexts and fingerprint."""
    transport = CapturingTransport()
    client = sentry_sdk.Client(
        dsn=dsn,
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    scope = sentry_sdk.Scope()
    for key, value in TAGS.items():
        scope.set_tag(key, value)
    for key, context in CONTEXTS.items():
        scope.set_context(key, context)
    scope.fingerprint = fingerprint or ["telemetryd", "agent-alpha", "rss_critical"]
    event: dict[str, Any] = {
        "event_id": event_id,
        "level": "error",
        "exception": {"values": [{"type": EXCEPTION_TYPE, "value": EXCEPTION_VALUE}]},
    }
    assert client.capture_event(event, scope=scope) == event_id  # type: ignore[arg-type]
    client.close()
    assert len(transport.envelopes) == 1
    return transport.envelopes[0]


@dataclass(frozen=True)
class Answer:
    """What the ingest endpoint said."""

    status: int
    headers: dict[str, str]
    body: bytes


def post_envelope(dsn: str, body: bytes) -> Answer:
    """POST envelope bytes to the DSN's envelope endpoint, the way the uploader will."""
    auth = Dsn(dsn).to_auth(client="telemetryd/test")
    request = urllib.request.Request(
        auth.get_api_url(sentry_sdk.consts.EndpointType.ENVELOPE),
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": auth.to_header(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Answer(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, dict(exc.headers.items()), exc.read())


def new_event_id() -> str:
    """A random event id as sentry-sdk writes them."""
    return uuid.uuid4().hex


def test_envelope_from_sentry_sdk_is_stored_with_tags_contexts_and_title(
    bugsink_server: BugsinkServer, bugsink_project: BugsinkProject
) -> None:
    """An envelope sentry-sdk built, POSTed by hand, is stored before the 2xx with its details."""
    event_id = new_event_id()
    answer = post_envelope(bugsink_project.dsn, build_envelope(bugsink_project.dsn, event_id))
    assert 200 <= answer.status < 300, answer

    # The local template digests synchronously: no polling needed after the 2xx.
    stored = bugsink_server.lookup_event(event_id, bugsink_project.id)
    assert stored is not None
    assert normalize_event_id(stored["event_id"]) == event_id
    data = stored["data"]
    assert {k: v for k, v in _tags(data).items() if k in TAGS} == TAGS
    assert data["contexts"]["process"] == CONTEXTS["process"]
    assert data["fingerprint"] == ["telemetryd", "agent-alpha", "rss_critical"]
    assert data["exception"]["values"][0]["type"] == EXCEPTION_TYPE
    [issue] = bugsink_server.list_issues(bugsink_project.id)
    assert (issue["calculated_type"], issue["calculated_value"]) == (
        EXCEPTION_TYPE,
        EXCEPTION_VALUE,
    )


def _tags(data: dict[str, Any]) -> dict[str, str]:
    """Tags as a dict, whether the payload holds a dict or a list of pairs."""
    tags = data.get("tags") or {}
    return dict(tags) if isinstance(tags, dict) else {str(k): str(v) for k, v in tags}


def test_resending_the_same_event_id_stores_it_once(
    bugsink_server: BugsinkServer, bugsink_project: BugsinkProject
) -> None:
    """A retried upload (same envelope, same event_id) leaves exactly one stored event."""
    event_id = new_event_id()
    envelope = build_envelope(bugsink_project.dsn, event_id)
    first = post_envelope(bugsink_project.dsn, envelope)
    second = post_envelope(bugsink_project.dsn, envelope)
    assert 200 <= first.status < 300, first
    # Bugsink answers a duplicate 200 (like Sentry) rather than an error the uploader would treat
    # as a rejection; the test pins that because the spool's retry logic relies on it.
    assert 200 <= second.status < 300, second

    events = bugsink_server.list_events(bugsink_project.id)
    assert [normalize_event_id(e["event_id"]) for e in events] == [event_id]
    project = bugsink_server.get_project(bugsink_project.id)
    assert project["stored_event_count"] == 1


def test_same_fingerprint_groups_distinct_events_into_one_issue(
    bugsink_server: BugsinkServer, bugsink_project: BugsinkProject
) -> None:
    """Two event_ids with one fingerprint are two stored events in a single issue."""
    ids = [new_event_id(), new_event_id()]
    for event_id in ids:
        answer = post_envelope(bugsink_project.dsn, build_envelope(bugsink_project.dsn, event_id))
        assert 200 <= answer.status < 300, answer
    assert len(bugsink_server.list_issues(bugsink_project.id)) == 1
    assert sorted(
        normalize_event_id(e["event_id"]) for e in bugsink_server.list_events(bugsink_project.id)
    ) == sorted(ids)


def test_projects_are_isolated(
    bugsink_server: BugsinkServer, bugsink_project: BugsinkProject
) -> None:
    """An event sent to one project is not visible through another project's lookup."""
    event_id = new_event_id()
    answer = post_envelope(bugsink_project.dsn, build_envelope(bugsink_project.dsn, event_id))
    assert 200 <= answer.status < 300, answer
    assert bugsink_server.lookup_event(event_id, bugsink_project.id) is not None
    assert bugsink_server.lookup_event(event_id, bugsink_server.project.id) is None


def test_lookup_of_unknown_event_is_none(bugsink_server: BugsinkServer) -> None:
    """A well-formed event_id that was never sent gives None, not an error."""
    assert bugsink_server.lookup_event(new_event_id()) is None


@pytest.mark.parametrize("bad", ["", "xyz", "0123", "g" * 32])
def test_lookup_rejects_malformed_event_ids(bugsink_server: BugsinkServer, bad: str) -> None:
    """A malformed event_id is a ValueError raised before any request."""
    with pytest.raises(ValueError, match="not an event id"):
        bugsink_server.lookup_event(bad)


def test_wrong_ingest_key_is_refused(
    bugsink_server: BugsinkServer, bugsink_project: BugsinkProject
) -> None:
    """An envelope signed with a key the project does not have is refused and not stored."""
    event_id = new_event_id()
    dsn = bugsink_project.dsn
    wrong = Dsn(dsn)
    bad_dsn = dsn.replace(wrong.public_key, uuid.uuid4().hex)
    answer = post_envelope(bad_dsn, build_envelope(bad_dsn, event_id))
    assert 400 <= answer.status < 500, answer
    assert bugsink_server.lookup_event(event_id, bugsink_project.id) is None


def test_garbage_envelope_is_a_client_error(bugsink_project: BugsinkProject) -> None:
    """Bytes that are not an envelope get a 4xx, which the uploader must treat as a rejection."""
    answer = post_envelope(bugsink_project.dsn, b"this is not an envelope\n")
    assert 400 <= answer.status < 500, answer


def test_quota_exceeded_answers_429_with_rate_limits(
    bugsink_server_factory: Callable[..., BugsinkServer],
) -> None:
    """Past the per-project quota Bugsink answers 429, limits every category, and stores nothing."""
    server = bugsink_server_factory(settings={"MAX_EVENTS_PER_PROJECT_PER_5_MINUTES": 2})
    ids = [new_event_id() for _ in range(3)]
    answers = [post_envelope(server.dsn, build_envelope(server.dsn, i)) for i in ids]
    assert [a.status for a in answers] == [200, 200, 429]

    # Even a 200 carries a rate-limit header (for transactions/spans), so callers must read
    # the categories rather than treat the header's presence as "limited".
    assert "error" not in answers[0].headers["X-Sentry-Rate-Limits"]
    limits = [
        part.strip().split(":") for part in answers[2].headers["X-Sentry-Rate-Limits"].split(",")
    ]
    all_categories = [fields for fields in limits if fields[1] == ""]
    assert all_categories, limits
    assert int(all_categories[0][0]) > 0
    assert server.lookup_event(ids[2]) is None
    assert server.get_project()["stored_event_count"] == 2


def test_stop_ends_the_server_process(
    bugsink_server_factory: Callable[..., BugsinkServer],
) -> None:
    """stop() terminates the runserver pid it started and the port stops answering."""
    server = bugsink_server_factory()
    pid, url = server.pid, server.url
    assert pid is not None
    server.stop()
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/health/ready", timeout=5)
    server.stop()  # idempotent


def test_restart_keeps_events_and_dsn(
    bugsink_server_factory: Callable[..., BugsinkServer],
) -> None:
    """A server stopped and started again answers on the same DSN with its events kept."""
    server = bugsink_server_factory()
    dsn, first_pid = server.dsn, server.pid
    event_id = new_event_id()
    assert post_envelope(dsn, build_envelope(dsn, event_id)).status == 200
    server.stop()
    with pytest.raises(urllib.error.URLError):
        post_envelope(dsn, build_envelope(dsn, new_event_id()))
    server.start()
    assert server.pid != first_pid
    assert server.dsn == dsn
    assert server.lookup_event(event_id) is not None


def test_template_is_reused_and_incomplete_ones_are_ignored(
    bugsink_template: BugsinkTemplate, tmp_path: Path
) -> None:
    """The migrated template is built once per venv; a folder without metadata is no template."""
    assert cached_template(bugsink_template.venv) == bugsink_template
    (tmp_path / "db.sqlite3").write_bytes(b"")
    assert load_template(tmp_path, bugsink_template.venv) is None
