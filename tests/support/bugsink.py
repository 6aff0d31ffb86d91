"""Run Bugsink, a real Sentry-compatible server, on loopback for the test suite.

Bugsink lives in its own virtualenv (it pins Django and sentry-sdk), installed by
``.ci/install-bugsink``. Migrating a fresh database takes seconds, so it is done once
into a *template* directory kept inside that venv; every server copies the template
(SQLite files included), writes its own config and starts ``runserver`` (about 0.6 s).

Register the fixtures in ``tests/conftest.py``::

    from tests.support.bugsink import (  # noqa: F401
        bugsink_project, bugsink_server, bugsink_server_factory, bugsink_template,
    )
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
import structlog

from crash_reports.common.atomic import write_atomic

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / ".ci" / "install-bugsink"
VENV_ENV_VAR = "TELEMETRYD_BUGSINK_VENV"
DEFAULT_VENV = REPO_ROOT / ".cache" / "bugsink-venv"
API_PREFIX = "/api/canonical/0"
CONF_NAME = "bugsink_conf.py"
GENERATED_CONF_NAME = "bugsink_conf.generated.py"
METADATA_NAME = "telemetryd-template.json"
# Bump when build_template changes what it creates, so cached templates are rebuilt.
TEMPLATE_CACHE_NAME = "telemetryd-template-v1"
LOG_NAME = "runserver.log"
_SETUP_MARK = "TELEMETRYD-BUGSINK-SETUP "
# Environment that would point Bugsink at other databases or another interpreter's packages.
_SCRUBBED_ENV = (
    "DATABASE_PATH",
    "TEST_DATABASE_PATH",
    "SNAPPEA_DATABASE_PATH",
    "DJANGO_SETTINGS_MODULE",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
)
# Runs inside `bugsink-manage shell -c`: one team and one project, printed on one marked line.
_SETUP_SCRIPT = f"""
import json
from teams.models import Team
from projects.models import Project
team = Team.objects.get_or_create(name="telemetryd")[0]
project = Project.objects.get_or_create(team=team, name="telemetryd-tests")[0]
print({_SETUP_MARK!r} + json.dumps({{
    "team_id": str(team.id), "project_id": project.id, "sentry_key": project.sentry_key.hex,
}}))
"""

SettingValue = str | int | float | bool | None

# The installation-wide quota (1000 events per 5 minutes by default) would let one test's
# volume cause another's 429 on the shared server; per-project quotas keep their defaults.
SHARED_SERVER_SETTINGS: Mapping[str, SettingValue] = {
    "MAX_EVENTS_PER_5_MINUTES": 1_000_000,
    "MAX_EVENTS_PER_HOUR": 1_000_000,
}


class BugsinkError(RuntimeError):
    """Bugsink could not be installed, set up, started, or answered unexpectedly."""


@dataclass(frozen=True)
class BugsinkProject:
    """A project on a running server; ``dsn`` holds the ingest key, so never log it."""

    id: int
    dsn: str


@dataclass(frozen=True)
class BugsinkTemplate:
    """A migrated Bugsink state directory that servers copy instead of migrating again."""

    directory: Path
    venv: Path
    team_id: str
    project_id: int
    sentry_key: str
    token: str


def bugsink_venv() -> Path:
    """The Bugsink venv: ``$TELEMETRYD_BUGSINK_VENV``, else ``.cache/bugsink-venv`` in the repo."""
    configured = os.environ.get(VENV_ENV_VAR)
    return Path(configured) if configured else DEFAULT_VENV


_checked_venvs: set[Path] = set()


def ensure_installed(venv: Path | None = None, timeout_seconds: float = 900.0) -> Path:
    """Return the venv holding Bugsink, after ``.ci/install-bugsink`` made sure it is there.

    The script is a no-op (about 0.3 s) when the right version is installed, so it runs once
    per process: a pin bumped in the script then reaches every machine by itself.
    """
    venv = venv if venv is not None else bugsink_venv()
    if venv in _checked_venvs:
        return venv
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        env={**os.environ, VENV_ENV_VAR: str(venv)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
    if result.returncode != 0:
        raise BugsinkError(
            f"{INSTALL_SCRIPT} failed with exit code {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    _checked_venvs.add(venv)
    log.info(
        "bugsink.install.checked",
        venv=str(venv),
        seconds=round(time.monotonic() - started, 2),
        output=result.stdout.strip()[-200:],
    )
    return venv


def _bugsink_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _manage(venv: Path, directory: Path, *args: str, timeout_seconds: float = 300.0) -> str:
    """Run one ``bugsink-manage`` command in ``directory`` and return its stdout."""
    result = subprocess.run(
        [str(venv / "bin" / "bugsink-manage"), *args],
        cwd=directory,
        env=_bugsink_env(venv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
    if result.returncode != 0:
        raise BugsinkError(
            f"bugsink-manage {args[0]} exited {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def render_conf(
    generated: str, directory: Path, port: int, settings: Mapping[str, SettingValue]
) -> str:
    """The generated config plus our overrides: no phoning home, ingest store inside ``directory``.

    >>> text = render_conf("BUGSINK = {}\\n", Path("/x"), 8001, {"MAX_EVENTS_PER_5_MINUTES": 3})
    >>> text.splitlines()[-1]  # doctest: +NORMALIZE_WHITESPACE
    "BUGSINK.update({'BASE_URL': 'http://127.0.0.1:8001', 'PHONEHOME': False,
      'INGEST_STORE_BASE_DIR': '/x/ingestion', 'MAX_EVENTS_PER_5_MINUTES': 3})"
    """
    overrides: dict[str, SettingValue] = {
        "BASE_URL": f"http://127.0.0.1:{port}",
        "PHONEHOME": False,
        "INGEST_STORE_BASE_DIR": str(directory / "ingestion"),
        **settings,
    }
    # repr() of str/int/float/bool/None is a valid Python literal, so the config stays importable.
    return f"{generated.rstrip()}\n\nBUGSINK.update({overrides!r})\n"


def _write_conf(directory: Path, port: int, settings: Mapping[str, SettingValue]) -> None:
    generated = (directory / GENERATED_CONF_NAME).read_text()
    conf = render_conf(generated, directory, port, settings)
    write_atomic(directory / CONF_NAME, conf.encode())


def build_template(directory: Path, venv: Path | None = None) -> BugsinkTemplate:
    """Create config, migrate both databases, add a team, a project and an API token."""
    venv = ensure_installed(venv)
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            str(venv / "bin" / "bugsink-create-conf"),
            "--template=local",
            "--host=127.0.0.1",
            # The real port is only known at start; BASE_URL is overridden then.
            "--port=8000",
            f"--output-file={GENERATED_CONF_NAME}",
        ],
        cwd=directory,
        env=_bugsink_env(venv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise BugsinkError(f"bugsink-create-conf failed:\n{result.stderr[-4000:]}")
    _write_conf(directory, 8000, {})
    _manage(venv, directory, "migrate", "--no-input")
    _manage(venv, directory, "migrate", "snappea", "--database=snappea", "--no-input")
    setup_out = _manage(venv, directory, "shell", "-c", _SETUP_SCRIPT)
    marked = [line for line in setup_out.splitlines() if line.startswith(_SETUP_MARK)]
    if len(marked) != 1:
        raise BugsinkError(f"project setup printed no result line:\n{setup_out[-2000:]}")
    setup = json.loads(marked[0].removeprefix(_SETUP_MARK))
    token = _manage(venv, directory, "create_auth_token").split()[-1]
    template = BugsinkTemplate(
        directory=directory,
        venv=venv,
        team_id=str(setup["team_id"]),
        project_id=int(setup["project_id"]),
        sentry_key=str(setup["sentry_key"]),
        token=token,
    )
    metadata = {
        "team_id": template.team_id,
        "project_id": template.project_id,
        "sentry_key": template.sentry_key,
        "token": template.token,
    }
    write_atomic(directory / METADATA_NAME, json.dumps(metadata).encode())
    log.info(
        "bugsink.template.built",
        directory=str(directory),
        seconds=round(time.monotonic() - started, 2),
    )
    return template


def load_template(directory: Path, venv: Path) -> BugsinkTemplate | None:
    """A template built earlier, or None if ``directory`` holds no complete one."""
    try:
        metadata = json.loads((directory / METADATA_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    return BugsinkTemplate(
        directory=directory,
        venv=venv,
        team_id=str(metadata["team_id"]),
        project_id=int(metadata["project_id"]),
        sentry_key=str(metadata["sentry_key"]),
        token=str(metadata["token"]),
    )


def cached_template(venv: Path | None = None) -> BugsinkTemplate:
    """The template kept inside the venv, built on first use (a reinstall drops it).

    Migrating takes seconds; reusing one migrated state across sessions makes a warm
    session's setup the cost of copying a few SQLite files.
    """
    venv = ensure_installed(venv)
    target = venv / TEMPLATE_CACHE_NAME
    cached = load_template(target, venv)
    if cached is not None:
        return cached
    # One build at a time (pytest-xdist workers start together on a fresh venv): the others
    # wait for it and load what it built.
    with (venv / f".{TEMPLATE_CACHE_NAME}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = load_template(target, venv)
        if cached is not None:
            return cached
        # Build aside and rename into place, so an interrupted build is never seen.
        scratch = Path(tempfile.mkdtemp(prefix=".template-build-", dir=venv))
        try:
            build_template(scratch, venv)
            with contextlib.suppress(OSError):  # a session without this lock renamed first
                scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    cached = load_template(target, venv)
    if cached is None:
        raise BugsinkError(f"no usable template at {target} after building one")
    return cached


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def normalize_event_id(event_id: str) -> str:
    """An event id as 32 lowercase hex digits; ``ValueError`` for anything else.

    >>> normalize_event_id("0123456789ABCDEF0123456789ABCDEF")
    '0123456789abcdef0123456789abcdef'
    >>> normalize_event_id("not-an-id")
    Traceback (most recent call last):
    ...
    ValueError: not an event id: 'not-an-id'
    """
    try:
        return uuid.UUID(hex=event_id).hex
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"not an event id: {event_id!r}") from None


class BugsinkServer:
    """One Bugsink ``runserver`` process on 127.0.0.1 that this object started and stops."""

    def __init__(
        self,
        workdir: Path,
        *,
        template: BugsinkTemplate | None = None,
        settings: Mapping[str, SettingValue] | None = None,
        venv: Path | None = None,
        startup_timeout_seconds: float = 60.0,
    ) -> None:
        """Prepare a server in ``workdir``; nothing runs until ``start()``."""
        self._workdir = workdir
        self._template = template
        self._settings = dict(settings or {})
        self._venv = venv
        self._startup_timeout_seconds = startup_timeout_seconds
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._state: BugsinkTemplate | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start runserver on a free loopback port and wait for /health/ready.

        The first start copies (or builds) the migrated state. A start after ``stop()`` keeps
        the stored events and tries the previous port first, so DSNs handed out stay valid.
        """
        if self._proc is not None:
            raise BugsinkError("server already started")
        started = time.monotonic()
        state = self._state or self._prepare_state()
        self._state = state
        ports = [self._port] if self._port is not None else []
        # A free port can be taken between probing and binding; a few tries make that harmless.
        ports += [free_loopback_port() for _ in range(3)]
        last_error: BugsinkError | None = None
        for port in ports:
            try:
                self._spawn(state.directory, port)
                break
            except _PortTakenError as exc:
                last_error = BugsinkError(str(exc))
        else:
            assert last_error is not None
            raise last_error
        log.info(
            "bugsink.server.started",
            pid=self.pid,
            port=self._port,
            seconds=round(time.monotonic() - started, 2),
        )
        return self

    def _prepare_state(self) -> BugsinkTemplate:
        template = self._template or build_template(self._workdir / "template", self._venv)
        state_dir = self._workdir / "state"
        # The template is never served, so its SQLite files are quiescent and safe to copy.
        shutil.copytree(template.directory, state_dir)
        return BugsinkTemplate(
            directory=state_dir,
            venv=template.venv,
            team_id=template.team_id,
            project_id=template.project_id,
            sentry_key=template.sentry_key,
            token=template.token,
        )

    def _spawn(self, state_dir: Path, port: int) -> None:
        assert self._state is not None
        _write_conf(state_dir, port, self._settings)
        log_path = state_dir / LOG_NAME
        # One log per attempt, so a failed attempt's "port in use" is not read again.
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [
                    str(self._state.venv / "bin" / "bugsink-manage"),
                    "runserver",
                    f"127.0.0.1:{port}",
                    "--noreload",
                ],
                cwd=state_dir,
                env=_bugsink_env(self._state.venv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self._proc, self._port = proc, port
        try:
            self._wait_ready(proc, port, log_path)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        deadline = time.monotonic() + self._startup_timeout_seconds
        url = f"http://127.0.0.1:{port}/health/ready"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                output = log_path.read_text(errors="replace")
                if "already in use" in output:
                    raise _PortTakenError(f"port {port} was taken:\n{output[-2000:]}")
                raise BugsinkError(
                    f"runserver exited {proc.returncode} before ready:\n{output[-4000:]}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise BugsinkError(
            f"runserver not ready within {self._startup_timeout_seconds}s:\n"
            f"{log_path.read_text(errors='replace')[-4000:]}"
        )

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Terminate the runserver process this object started and wait for it; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_seconds)
        log.info("bugsink.server.stopped", pid=proc.pid, returncode=proc.returncode)

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    # -- facts about the running server -----------------------------------------------------

    def _running_state(self) -> BugsinkTemplate:
        if self._state is None or self._port is None:
            raise BugsinkError("server not started")
        return self._state

    @property
    def pid(self) -> int | None:
        """Pid of the runserver process, or None when not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def port(self) -> int:
        """The loopback port the server listens on (or last listened on, after ``stop()``)."""
        self._running_state()
        assert self._port is not None
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """A full-access API token (a secret: don't log it)."""
        return self._running_state().token

    @property
    def project(self) -> BugsinkProject:
        """The project created with the server."""
        state = self._running_state()
        return BugsinkProject(
            id=state.project_id, dsn=self._dsn(state.sentry_key, state.project_id)
        )

    @property
    def dsn(self) -> str:
        """DSN of the project created with the server (holds the ingest key: don't log it)."""
        return self.project.dsn

    @property
    def log_path(self) -> Path:
        """The file runserver writes its output to."""
        return self._running_state().directory / LOG_NAME

    def _dsn(self, sentry_key: str, project_id: int) -> str:
        return f"http://{sentry_key}@127.0.0.1:{self.port}/{project_id}"

    # -- API --------------------------------------------------------------------------------

    def _api(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> tuple[int, Any]:
        """One API call; returns (status, parsed JSON or None). Raises only on transport errors."""
        url = path if path.startswith("http") else f"{self.url}{API_PREFIX}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, parsed

    def _api_ok(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        status, parsed = self._api(method, path, body)
        if not 200 <= status < 300:
            raise BugsinkError(f"{method} {path.split('?')[0]} answered {status}: {parsed!r}")
        return parsed

    def _paginated(self, path: str) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        next_url: str | None = path
        while next_url is not None:
            page = self._api_ok("GET", next_url)
            results.extend(page["results"])
            next_url = page.get("next")
        return results

    def create_project(self, name: str) -> BugsinkProject:
        """A new project in the server's team, with its own DSN and its own quota."""
        state = self._running_state()
        created = self._api_ok("POST", "/projects/", {"team": state.team_id, "name": name})
        # The create answer omits the integer id; find the project by its (unique) name.
        for project in self._paginated("/projects/"):
            if project["name"] == created["name"]:
                return BugsinkProject(id=int(project["id"]), dsn=str(project["dsn"]))
        raise BugsinkError(f"project {name!r} not found after creating it")

    def get_project(self, project_id: int | None = None) -> dict[str, Any]:
        """The project as the API shows it, including ``stored_event_count``."""
        project_id = self._running_state().project_id if project_id is None else project_id
        result: dict[str, Any] = self._api_ok("GET", f"/projects/{project_id}/")
        return result

    def lookup_event(self, event_id: str, project_id: int | None = None) -> dict[str, Any] | None:
        """The stored event (``data`` holds the full payload), or None if Bugsink has none."""
        project_id = self._running_state().project_id if project_id is None else project_id
        query = urllib.parse.urlencode(
            {"project": project_id, "event_id": normalize_event_id(event_id)}
        )
        status, parsed = self._api("GET", f"/events/lookup/?{query}")
        if status == 404:
            return None
        if status != 200:
            raise BugsinkError(f"event lookup answered {status}: {parsed!r}")
        result: dict[str, Any] = parsed
        return result

    def list_issues(self, project_id: int | None = None) -> list[dict[str, Any]]:
        """Every issue of a project, oldest first."""
        project_id = self._running_state().project_id if project_id is None else project_id
        return self._paginated(f"/issues/?project={project_id}")

    def list_events(self, project_id: int | None = None) -> list[dict[str, Any]]:
        """Every stored event of a project (summaries without ``data``), grouped by issue."""
        events: list[dict[str, Any]] = []
        for issue in self.list_issues(project_id):
            events.extend(self._paginated(f"/events/?issue={issue['id']}&order=asc"))
        return events


class _PortTakenError(BugsinkError):
    """runserver could not bind the port it was given."""


# -- pytest fixtures (import them into tests/conftest.py) -----------------------------------


@pytest.fixture(scope="session")
def bugsink_template() -> BugsinkTemplate:
    """Migrated Bugsink state, built once per venv and reused by every session."""
    return cached_template()


@pytest.fixture(scope="session")
def bugsink_server(
    bugsink_template: BugsinkTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BugsinkServer]:
    """One Bugsink server shared by the whole session; use ``bugsink_project`` to isolate tests."""
    workdir = tmp_path_factory.mktemp("bugsink")
    with BugsinkServer(
        workdir, template=bugsink_template, settings=SHARED_SERVER_SETTINGS
    ) as server:
        yield server


@pytest.fixture
def bugsink_project(bugsink_server: BugsinkServer) -> BugsinkProject:
    """A fresh project on the shared server: own DSN, own events, own per-project quota."""
    return bugsink_server.create_project(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def bugsink_server_factory(
    bugsink_template: BugsinkTemplate, tmp_path: Path
) -> Iterator[Callable[..., BugsinkServer]]:
    """Start private servers, e.g. with ``settings={"MAX_EVENTS_PER_PROJECT_PER_5_MINUTES": 2}``."""
    servers: list[BugsinkServer] = []

    def start(settings: Mapping[str, SettingValue] | None = None) -> BugsinkServer:
        workdir = tmp_path / f"bugsink-{len(servers)}"
        server = BugsinkServer(workdir, template=bugsink_template, settings=settings)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
