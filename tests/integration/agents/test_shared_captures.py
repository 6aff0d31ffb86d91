"""The repository's own captures are what the suite replays; a ``shared/fixtures/otlp-captures``
folder beside the checkout is optional and, when present, every capture in it is replayed too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.support.captures import (
    CAPTURES_DIR,
    capture_folders,
    replay,
    requests,
    shared_captures_dir,
)

SHARED = shared_captures_dir()
SHARED_FOLDERS = capture_folders(SHARED) if SHARED is not None else []
NO_SHARED = pytest.mark.skip(reason="no shared/fixtures/otlp-captures beside the checkout")


def _shared_params() -> list[Any]:
    if not SHARED_FOLDERS:
        return [pytest.param("none", marks=NO_SHARED)]
    return SHARED_FOLDERS


def test_the_repository_holds_its_captures_and_documents_each() -> None:
    """Every in-repo capture has recorded requests and a row in the folder's README."""
    folders = capture_folders(CAPTURES_DIR)
    assert len(folders) >= 6, folders
    readme = (CAPTURES_DIR / "README.md").read_text()
    for folder in folders:
        assert f"`{folder}`" in readme, folder
        assert requests(folder), folder


@pytest.mark.parametrize("folder", _shared_params())
def test_every_shared_capture_is_accepted_and_read_as_one_agent(
    make_agents: Any, folder: str
) -> None:
    """Each capture beside the checkout replays with 2xx answers into a real receiver and
    store, and lands as exactly one agent row that learned something (a session or request)."""
    assert SHARED is not None
    agents: AgentTelemetry = make_agents()
    statuses = replay(agents.receiver.port, folder, captures=SHARED)
    assert statuses and all(200 <= s < 300 for s in statuses), statuses
    assert agents.ingestor.flush(30.0)
    rows = agents.reader.stats(0.0, time.time() + 365 * 86400.0, "agent")
    assert len(rows) == 1, [r.key for r in rows]
    assert rows[0].sessions or rows[0].requests, rows[0]


@pytest.mark.parametrize("folder", _shared_params())
def test_the_in_repo_copy_equals_the_shared_capture(folder: str) -> None:
    """Where a shared capture has an in-repo copy, the copy is byte for byte the same (so
    the figures the tests assert are the agents' own)."""
    assert SHARED is not None
    if not (CAPTURES_DIR / folder).is_dir():
        pytest.skip(f"{folder} has no copy in the repository")
    ours = _files(CAPTURES_DIR / folder)
    theirs = _files(SHARED / folder)
    assert ours == theirs


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
