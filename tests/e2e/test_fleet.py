"""A fleet of three hosts on this machine, watched with real engines end to end.

Each host is a network namespace on a bridge this test creates, with its own pid, mount and
UTS namespace (its own /proc and host name), its own telemetryd, state dir and watched
process; host-a's process leaks. A central Prometheus (Debian's) scrapes host-a and host-b
over HTTPS with basic auth, evaluates monitoring/prometheus-alerts.yml (the memory alert's
``for`` shortened) and sends to a real Alertmanager routing to a webhook in this test.
host-c listens on its own loopback only (a laptop behind NAT): a Prometheus in agent mode
beside it scrapes it and remote-writes to the central one, over TLS with basic auth. Every
host's crash reports land in one Bugsink, tagged with their host name. Traffic goes only to
loopback and to the test's own bridge and namespace addresses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_monitoring_rules import DASHBOARD, RULES
from tests.support.bugsink import BugsinkProject, BugsinkServer, free_loopback_port
from tests.support.daemon_proc import REPO, clean_env
from tests.support.netns import Fleet, Host, Relay
from tests.support.waiting import wait_for
from tests.support.web_auth import get, make_cert, write_web_config

MEMORY_ALERT = "TelemetrydTreeNearCritical"
USER, PASSWORD = "prometheus", "fleet-scrape-pass"
PUSHER, PUSH_PASSWORD = "host-c", "fleet-push-pass"
METRICS_PORT = 9464

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(b) for b in
                                 ("ip", "unshare", "prometheus", "prometheus-alertmanager")),
    reason="needs root (network namespaces), iproute2, prometheus, prometheus-alertmanager")

AGENT = textwrap.dedent("""
    # fleet_agent.py: a stand-in coding agent; "leak" grows to 100 MiB, "steady" stays small.
    import sys, time
    held = []
    while True:
        if sys.argv[1] == "leak" and len(held) < 25:
            block = bytearray(4 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
            held.append(block)
        time.sleep(0.3)
""")

# pid 1 of the host's pid namespace: names the host, leaves one crash report with `wrap`
# (a child killed by SIGKILL), starts the watched agent, then runs the daemon.
HOST_SCRIPT = textwrap.dedent("""
    hostname "$1"
    "$PY" -m daemon --config "$2" wrap -- sh -c 'kill -KILL $$' >/dev/null 2>&1
    "$PY" "$3" "$4" &
    "$PY" -m daemon --config "$2" run
""")


class Webhook:
    """Alertmanager's webhook receiver: every notification POSTed, kept in order."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self) -> list[dict[str, Any]]:
        return [a for n in list(self.notifications) for a in n.get("alerts", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Processes:
    """Every process the test starts; ``close`` kills each by its pid."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=clean_env(), cwd=REPO)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()  # unshare --kill-child takes the host's whole pid namespace along
            proc.wait(timeout=30)


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    made = Fleet()
    try:
        made.open()
        for name in ("host-a", "host-b", "host-c"):
            made.add_host(name)
        yield made
    finally:
        made.close()
        assert not made.leftovers(), made.leftovers()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()


def host_config(folder: Path, host: Host, dsn: str, web: Path | None) -> Path:
    """telemetryd's config for one host: its state dir, Sentry, and its metrics listener."""
    listen = f"{host.address}:{METRICS_PORT}" if web else f"127.0.0.1:{METRICS_PORT}"
    web_line = f'web_config_file = "{web}"\n' if web else ""
    path = folder / "telemetryd.toml"
    path.write_text(
        f'[daemon]\ninterval = 0.5\nstate_dir = "{folder / "state"}"\nlog_format = "json"\n'
        f'[sentry]\ndsn = "{dsn}"\nflush_interval = "1s"\n'
        f'[metrics]\nlisten = "{listen}"\n{web_line}'
        '[[watch]]\nname = "fleet-agent"\ninterpreter_cmdline = "fleet_agent.py"\n'
        'rss_warning = "40MiB"\nrss_critical = "70MiB"\nsustained = 2\n')
    return path


def start_host(processes: Processes, folder: Path, host: Host, config: Path, mode: str) -> None:
    """The host's pid 1 (in its own pid, mount and UTS namespaces, in its network namespace)."""
    script, agent = folder / "host.sh", folder / "fleet_agent.py"
    script.write_text(HOST_SCRIPT)
    agent.write_text(AGENT)
    env_py = f"PY={sys.executable}"
    processes.start(host.name, [
        "ip", "netns", "exec", host.netns, "unshare", "--pid", "--fork", "--mount-proc",
        "--uts", "--kill-child", "env", env_py, "sh", str(script), host.name, str(config),
        str(agent), mode])


# Three daemons, two Prometheus servers, Alertmanager and Bugsink at once: kept off the
# machine while the tick-gap tests measure (a group of its own would still run beside
# them on the other worker), with minutes of waits of its own.
@pytest.mark.xdist_group("tick-gaps")
@pytest.mark.timeout(600)
def test_rules_routes_push_and_reports_across_three_hosts(
    tmp_path: Path, fleet: Fleet, processes: Processes,
    bugsink_server: BugsinkServer, bugsink_project: BugsinkProject,
) -> None:
    """The memory alert fires for host-a only and reaches the webhook; host-c's pushed series
    arrive with its instance; reports carry their host; the dashboard lists all three."""
    a, b, c = fleet.hosts["host-a"], fleet.hosts["host-b"], fleet.hosts["host-c"]
    central = f"{fleet.gateway}:{free_loopback_port()}"
    bugsink_port = int(urllib.parse.urlsplit(bugsink_project.dsn).port or 0)
    relay = Relay(bugsink_port, [h.netns for h in (a, b, c)])
    webhook = Webhook()
    try:
        # TLS and basic auth for the scraped hosts: one certificate for both addresses.
        cert, key = make_cert(tmp_path, "fleet", (a.address, b.address))
        web = write_web_config(tmp_path / "web.yml", {USER: PASSWORD}, cert, key)
        (tmp_path / "password").write_text(PASSWORD)
        for host, mode, host_web in ((a, "leak", web), (b, "steady", web), (c, "steady", None)):
            folder = tmp_path / host.name
            folder.mkdir()
            config = host_config(folder, host, bugsink_project.dsn, host_web)
            start_host(processes, folder, host, config, mode)

        am_port = free_loopback_port()
        (tmp_path / "am.yml").write_text(yaml.safe_dump({
            "route": {"receiver": "test", "group_by": ["alertname", "instance"],
                      "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "test", "webhook_configs": [
                {"url": f"http://127.0.0.1:{webhook.port}/alerts", "send_resolved": False}]}],
        }))
        processes.start("alertmanager", [
            "prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}", "--cluster.listen-address=",
            f"--web.listen-address=127.0.0.1:{am_port}"])

        # The shipped rules, with the memory alert's `for` shortened for a test of minutes.
        rules = yaml.safe_load(RULES.read_text())
        for rule in rules["groups"][0]["rules"]:
            if rule.get("alert") == MEMORY_ALERT:
                rule["for"] = "4s"
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
        (tmp_path / "central.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "2s", "scrape_timeout": "2s",
                       "evaluation_interval": "2s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{
                "job_name": "telemetryd", "scheme": "https",
                "tls_config": {"ca_file": str(cert)},
                "basic_auth": {"username": USER, "password_file": str(tmp_path / "password")},
                "static_configs": [{"targets": [f"{a.address}:{METRICS_PORT}",
                                                f"{b.address}:{METRICS_PORT}"]}],
            }],
        }))
        # The central Prometheus takes pushes (and queries) only over TLS with a user.
        central_cert, central_key = make_cert(tmp_path, "central", (fleet.gateway,))
        central_web = write_web_config(tmp_path / "central-web.yml", {PUSHER: PUSH_PASSWORD},
                                       central_cert, central_key)
        (tmp_path / "push-password").write_text(PUSH_PASSWORD)
        processes.start("central", [
            "prometheus", f"--config.file={tmp_path / 'central.yml'}",
            f"--storage.tsdb.path={tmp_path / 'central-data'}", f"--web.config.file={central_web}",
            f"--web.listen-address={central}", "--web.enable-remote-write-receiver"])

        # host-c: a Prometheus in agent mode beside its daemon, pushing to the central one.
        (tmp_path / "agent.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "2s", "scrape_timeout": "2s"},
            "scrape_configs": [{"job_name": "telemetryd", "static_configs": [
                {"targets": [f"127.0.0.1:{METRICS_PORT}"], "labels": {"instance": c.name}}]}],
            "remote_write": [{"url": f"https://{central}/api/v1/write",
                              "tls_config": {"ca_file": str(central_cert)},
                              "basic_auth": {"username": PUSHER, "password_file":
                                             str(tmp_path / "push-password")},
                              "queue_config": {"batch_send_deadline": "1s"}}],
        }))
        processes.start("agent", [
            "ip", "netns", "exec", c.netns, "prometheus", "--enable-feature=agent",
            f"--config.file={tmp_path / 'agent.yml'}",
            f"--storage.agent.path={tmp_path / 'agent-data'}",
            "--web.listen-address=127.0.0.1:9090"])

        def api(path: str, **params: str) -> Any:
            url = f"https://{central}/api/v1/{path}?" + urllib.parse.urlencode(params)
            answer = get(url, central_cert, (PUSHER, PUSH_PASSWORD), timeout=10)
            assert answer.status == 200, (path, answer.status, answer.body[:200])
            return json.loads(answer.body)["data"]

        def query(expr: str) -> list[dict[str, Any]]:
            return api("query", query=expr)["result"]  # type: ignore[no-any-return]

        def diagnose() -> str:
            return f"last central query: {last_error}\n" + "\n".join(
                f"--- {n}\n{processes.log(n)}" for n in
                             ("host-a", "host-b", "host-c", "central", "agent", "alertmanager"))

        last_error: list[str] = []

        def reachable() -> list[dict[str, Any]] | None:
            try:
                up = query("up")
                last_error[:] = [str([(x["metric"]["instance"], x["value"][1]) for x in up])]
                return [x for x in up if x["value"][1] == "1"] or None
            except (OSError, AssertionError) as exc:
                last_error[:] = [repr(exc)]
                return None

        try:
            wait_for(lambda: len(reachable() or []) == 3, timeout=120,
                     message="central Prometheus has both scrapes up and host-c's push")
            firing = wait_for(lambda: [x for x in webhook.alerts()
                                       if x["labels"].get("alertname") == MEMORY_ALERT],
                              timeout=180, interval=0.5, message="the memory alert at the webhook")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{diagnose()}") from None

        # The alert names the leaking host, by its instance, and no other host.
        assert {x["labels"]["instance"] for x in firing} == {f"{a.address}:{METRICS_PORT}"}
        assert firing[0]["status"] == "firing" and firing[0]["labels"]["watch"] == "fleet-agent"
        assert {x["metric"]["instance"] for x in query(f'ALERTS{{alertname="{MEMORY_ALERT}"}}')} \
            == {f"{a.address}:{METRICS_PORT}"}
        others = {x["labels"].get("instance") for x in webhook.alerts()} - {firing[0]["labels"]
                                                                            ["instance"]}
        assert not others, f"alerts for other hosts: {others}"

        # host-c's series arrived by remote write, told apart by their instance.
        pushed = query(f'telemetryd_watch_rss_bytes{{instance="{c.name}"}}')
        assert pushed and pushed[0]["metric"]["job"] == "telemetryd"

        # The dashboard's host variable, as Grafana asks it ($job = All), lists all three.
        variable = next(v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]
                        if v["name"] == "host")
        selector, label = re.fullmatch(r"label_values\((.*),\s*(\w+)\)",
                                       variable["query"]["query"]).groups()  # type: ignore[union-attr]
        hosts = set(api(f"label/{label}/values", **{"match[]": selector.replace("$job", ".*")}))
        assert hosts == {f"{a.address}:{METRICS_PORT}", f"{b.address}:{METRICS_PORT}", c.name}

        # Off loopback the status page and its API take the same basic auth, over TLS.
        for path in ("/metrics", "/", "/api/status"):
            url = f"https://{b.address}:{METRICS_PORT}{path}"
            assert get(url, cert).status == 401, path
            assert get(url, cert, (USER, "wrong")).status == 401, path
            assert get(url, cert, (USER, PASSWORD)).status == 200, path

        # One Bugsink project holds every host's reports, each tagged with its host name.
        def servers() -> dict[str, set[str]] | None:
            seen: dict[str, set[str]] = {}
            for summary in bugsink_server.list_events(bugsink_project.id):
                event = bugsink_server.lookup_event(summary["event_id"], bugsink_project.id)
                data = (event or {}).get("data") or {}
                tags = dict(_tags(data))
                assert tags.get("host") == data.get("server_name"), tags
                seen.setdefault(str(data.get("server_name")), set()).add(tags.get("kind", ""))
            wanted = {a.name, b.name, c.name}
            return seen if wanted <= set(seen) and "rss_critical" in seen[a.name] else None

        try:
            reports = wait_for(servers, timeout=120, interval=1.0,
                               message="reports of every host in Bugsink")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{diagnose()}") from None
        assert set(reports) == {a.name, b.name, c.name}
        assert reports[b.name] == {"killed"} and reports[c.name] == {"killed"}
    finally:
        processes.close()
        webhook.close()
        relay.close()


def _tags(data: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's tags as pairs, whichever of Sentry's two shapes it holds."""
    tags = data.get("tags") or {}
    if isinstance(tags, dict):
        return [(str(k), str(v)) for k, v in tags.items()]
    return [(str(t[0]), str(t[1])) for t in tags]
