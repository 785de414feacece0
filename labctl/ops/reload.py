"""`labctl reload`: apply edited configuration files to the running lab, each service its own way.

Every service is validated first with its real tool, where it runs (natively on this machine, in its
container with docker); one broken file stops the whole reload before anything is applied, and the
running configuration stays. Then:

- proxy       POST /api/reload: proxy.yaml read again; live settings change in place, restart-only
              ones are reported (labctl.proxy.reconfigure says which); `--restart` restarts it.
- collector   SIGHUP. The Collector rebuilds its pipelines in the same process (~0.1 s): the proxy's
              forwarder retries from its spool meanwhile, so clients see no error and nothing is
              lost. Processor state does not survive: delta_to_cumulative starts its totals again,
              which Prometheus sees as a counter reset (the lab's total queries count across resets).
- prometheus  POST /-/reload (--web.enable-lifecycle): prometheus.yml and the rule files. Stored data
              and the head block are untouched.
- grafana     the provisioning reload API (datasources, dashboards, alerting) as the lab's admin.
- alertmanager  POST /-/reload: alertmanager.yml (routes, receivers, inhibition). Alerts, silences and
              the notification log stay; a file Alertmanager refuses leaves the running one in place.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from labctl.errors import LabError
from labctl.model import DOCKER_REPO
from labctl.ops.config_files import record_applied
from labctl.poll import poll
from labctl.runtimes.base import Runtime

# Where compose/module-4.yml mounts lab/alertmanager/ (the folder: an editor's save by rename must show).
ALERTMANAGER_CONFIG_DIR = "/etc/lab-alertmanager"
RELOADABLE = ("proxy", "collector", "prometheus", "grafana", "alertmanager")
EFFECT_TIMEOUT = 15.0  # seconds for a reload to show its effect before labctl calls it failed


@dataclass
class ReloadResult:
    service: str
    how: str  # the mechanism used, as a student would type it
    seconds: float = 0.0  # from the request to the effect being seen
    applied: list[str] = field(default_factory=list)  # what changed (proxy: settings)
    restart_needed: list[str] = field(default_factory=list)
    restarted: bool = False
    waited: float = 0.0  # before the reload: the Collector's data scraped by Prometheus first
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reloader:
    def __init__(self, runtime: Runtime, running: set[str]) -> None:
        self.runtime = runtime
        self.running = running  # the services `labctl status` saw running
        self.lab = runtime.lab
        self.model = runtime.model

    # --- validation -----------------------------------------------------------------------------------

    def validate(self, service: str) -> None:
        """Raise LabError with the tool's exact output when the service's files on disk do not validate."""
        if service == "grafana":
            _validate_grafana(self.model.root)
            return
        argv, tool = self._validation_command(service)
        code, output = self._run(service, argv)
        if code != 0:
            raise LabError(
                f"{service}: the edited configuration is refused ({tool} failed); the running configuration "
                f"stays.\n{output.strip()}",
                f"fix the file named above, then `labctl reload {service}` again",
            )

    def _validation_command(self, service: str) -> tuple[list[str], str]:
        docker = self.runtime.name == "docker"
        if service == "proxy":
            config = (
                f"{DOCKER_REPO}/lab/proxy/proxy.yaml"
                if docker
                else str(self.model.root / "lab" / "proxy" / "proxy.yaml")
            )
            python = "python" if docker else sys.executable
            return [
                python,
                "-m",
                "labctl",
                "proxy",
                "serve",
                "--config",
                config,
                "--check",
            ], "the proxy's dry run"
        if service == "collector":
            binary = "/otelcol-contrib" if docker else self._native_binary("otelcol-lab")
            return [binary, "validate", *self._collector_configs()], "otelcol validate"
        if service == "prometheus":
            config = (
                "/etc/lab-prometheus/prometheus.yml"
                if docker
                else str(self.lab.data_dir("prometheus") / "prometheus.yml")
            )
            promtool = "promtool" if docker else self._native_binary("promtool")
            return [promtool, "check", "config", config], "promtool check config"
        if service == "alertmanager":
            # Run where Alertmanager runs (its working directory holds the webhook's receiver-url file).
            config = (
                f"{ALERTMANAGER_CONFIG_DIR}/alertmanager.yml"
                if docker
                else str(self.model.root / "lab" / "alertmanager" / "alertmanager.yml")
            )
            amtool = "amtool" if docker else self._native_binary("amtool")
            return [amtool, "check-config", config], "amtool check-config"
        raise LabError(f"{service} has no configuration to reload", f"reloadable: {', '.join(RELOADABLE)}")

    def _collector_configs(self) -> list[str]:
        if self.runtime.name == "docker":
            from labctl.runtimes.docker import DockerRuntime

            assert isinstance(self.runtime, DockerRuntime)
            return DockerRuntime.collector_args()
        return self._native_launch("collector").cmd[1:]  # --config base.yaml [--config overlay ...]

    def _native_binary(self, name: str) -> str:
        from labctl.install import resolve_binary

        return str(resolve_binary(name))

    def _native_launch(self, service: str) -> Any:
        from labctl.runtimes.native import NativeRuntime

        assert isinstance(self.runtime, NativeRuntime)
        return self.runtime.launch(service, self.runtime.stage_services())

    def _run(self, service: str, argv: list[str]) -> tuple[int, str]:
        if self.runtime.name == "docker":
            from labctl.runtimes.docker import DockerRuntime

            assert isinstance(self.runtime, DockerRuntime)
            return self.runtime.exec_in(service, argv)
        import subprocess

        from labctl.runtimes.native import NativeRuntime

        assert isinstance(self.runtime, NativeRuntime)
        env = self.runtime._full_env(self._native_launch(service))
        try:
            out = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
                cwd=self.lab.data_dir(service),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, f"{argv[0]} could not run: {exc}"
        return out.returncode, (out.stdout + out.stderr)

    # --- applying -------------------------------------------------------------------------------------

    def apply(self, service: str, restart: bool = False) -> ReloadResult:
        apply: dict[str, Callable[[bool], ReloadResult]] = {
            "proxy": self._proxy,
            "collector": self._collector,
            "prometheus": self._prometheus,
            "grafana": self._grafana,
            "alertmanager": self._alertmanager,
        }
        result = apply[service](restart)
        if not (result.restart_needed and not result.restarted):
            # A setting still waiting for a restart keeps `labctl status` saying the file is newer.
            record_applied(self.lab, self.model, [service])
        return result

    def _url(self, service: str, port: str) -> str:
        return self.lab.url(service, port)

    def _proxy(self, restart: bool) -> ReloadResult:
        started = time.monotonic()
        try:
            r = requests.post(
                self._url("proxy", "admin") + "/api/reload", timeout=10, headers=self.lab.admin_headers()
            )
        except requests.RequestException as exc:
            raise LabError(
                f"proxy: the reload request failed: {exc}", "is the proxy running? `labctl status`"
            ) from None
        answer = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
        if r.status_code != 200:
            raise LabError(
                f"proxy: reload refused, the running configuration stays: {answer.get('error', r.text)}",
                answer.get("hint") or "fix lab/proxy/proxy.yaml, then `labctl reload proxy` again",
            )
        result = ReloadResult(
            "proxy",
            "POST /api/reload",
            round(time.monotonic() - started, 3),
            applied=list(answer.get("applied") or []),
            restart_needed=list(answer.get("restart_needed") or []),
        )
        if result.restart_needed and restart:
            started = time.monotonic()
            self.runtime.restart("proxy")  # clients retry the moment it is away; acknowledged data is spooled
            result.restarted, result.seconds = True, round(time.monotonic() - started, 3)
            result.note = "restarted: clients retried while it was away; its spool kept every unsent request"
        elif result.restart_needed:
            result.note = "needs a restart for: " + ", ".join(result.restart_needed)
        return result

    def _collector(self, restart: bool) -> ReloadResult:
        before = self._collector_up_since()
        held = self._hold_forwarding(True)
        try:
            waited = self._drain_collector() if held else 0.0
            started = time.monotonic()
            self.runtime.kill_service(
                "collector", int(signal.SIGHUP)
            )  # int: docker takes "1", not "Signals.SIGHUP"
            # The health_check extension is rebuilt with the pipelines: a new upSince is the new config running.
            _wait(
                lambda: (since := self._collector_up_since()) is not None and since != before,
                "the Collector to run its new configuration (a new health_check upSince)",
            )
            took = round(time.monotonic() - started, 3)
        finally:
            if held:
                self._hold_forwarding(False)
        note = "pipelines rebuilt in the same process; delta_to_cumulative's totals start again (a counter reset "
        note += "for Prometheus, which the dashboards count across)"
        if held:
            note += (
                f"; the proxy held and spooled new data for {waited + took:.1f}s until Prometheus had "
                "scraped everything the Collector took, then sent it to the new pipeline"
            )
        return ReloadResult("collector", "SIGHUP", took, waited=round(waited, 3), note=note)

    def _hold_forwarding(self, on: bool) -> bool:
        """Hold (or resume) the proxy's forwarding while Prometheus scrapes the Collector; False when there is
        nothing to protect (no Prometheus scraping it, or no proxy forwarding to it)."""
        if on and not {"proxy", "prometheus"} <= self.running:
            return False
        try:
            r = requests.put(
                self._url("proxy", "admin") + "/api/forwarding",
                json={"hold": on, "seconds": 30},
                timeout=10,
                headers=self.lab.admin_headers(),
            )
        except requests.RequestException as exc:
            if on:
                return False
            raise LabError(
                f"the proxy did not resume forwarding: {exc}",
                "it resumes by itself within 30 s; `labctl logs proxy` says more",
            ) from None
        return r.status_code == 200

    def _drain_collector(self) -> float:
        """Wait until the Collector exported every point it accepted and Prometheus scraped after that: its
        in-memory totals may then be rebuilt without losing a point Prometheus has not stored yet."""
        started = time.monotonic()
        internal = self._url("collector", "internal") + "/metrics"
        deadline = time.monotonic() + 3.0  # the batch processor's timeout is 1 s

        def exported_all() -> bool:
            accepted = _metric_sum(internal, "otelcol_receiver_accepted_metric_points_total")
            sent = _metric_sum(internal, "otelcol_exporter_sent_metric_points_total", 'exporter="prometheus"')
            return accepted is not None and sent is not None and sent >= accepted

        while not exported_all() and time.monotonic() < deadline:
            time.sleep(0.05)
        after = time.time()
        base = self._url("prometheus", "web")
        _wait(
            lambda: _last_scrape(base, "collector") > after,
            "Prometheus to scrape the Collector once more before its reload",
            timeout=20,
        )
        return time.monotonic() - started

    def _collector_up_since(self) -> str | None:
        svc = self.model.service("collector")
        try:
            r = requests.get(self._url("collector", svc.health.port) + svc.health.path, timeout=2)
            return str(r.json().get("upSince")) if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def _prometheus(self, restart: bool) -> ReloadResult:
        base = self._url("prometheus", "web")
        asked = int(time.time())  # lastConfigTime has whole seconds
        started = time.monotonic()
        try:
            r = requests.post(base + "/-/reload", timeout=30)
        except requests.RequestException as exc:
            raise LabError(
                f"prometheus: the reload request failed: {exc}", "is Prometheus running? `labctl status`"
            ) from None
        if r.status_code != 200:
            raise LabError(
                f"prometheus: reload refused, the running configuration stays: {r.text.strip()}",
                "fix lab/prometheus/, then `labctl reload prometheus` again",
            )
        # /-/reload answers when the reload is done; runtimeinfo confirms it (success, and loaded just now).
        info = _wait(
            lambda: (i := _prometheus_runtime(base)) and _epoch(i.get("lastConfigTime")) >= asked and i,
            "Prometheus to report the new configuration (runtimeinfo lastConfigTime)",
        )
        if not info.get("reloadConfigSuccess"):
            raise LabError("prometheus: the reload did not succeed", "`labctl logs prometheus` says why")
        return ReloadResult(
            "prometheus",
            "POST /-/reload",
            round(time.monotonic() - started, 3),
            note="config and rule files re-read; stored series untouched",
        )

    def _grafana(self, restart: bool) -> ReloadResult:
        password = self.lab.settings.get("grafana_admin_password")
        if not password:
            raise LabError(
                "grafana: no admin password in the lab's state", "start Grafana with `labctl up module-4`"
            )
        base = self._url("grafana", "web")
        started = time.monotonic()
        done = []
        for kind in ("datasources", "dashboards", "alerting"):
            try:
                r = requests.post(
                    f"{base}/api/admin/provisioning/{kind}/reload", auth=("admin", str(password)), timeout=30
                )
            except requests.RequestException as exc:
                raise LabError(
                    f"grafana: the {kind} reload failed: {exc}", "is Grafana running? `labctl status`"
                ) from None
            if r.status_code != 200:
                raise LabError(
                    f"grafana: reloading {kind} was refused (HTTP {r.status_code}): {r.text.strip()}",
                    "`labctl logs grafana` says why; the provisioned files are under dashboards/",
                )
            done.append(kind)
        return ReloadResult(
            "grafana",
            "POST /api/admin/provisioning/*/reload",
            round(time.monotonic() - started, 3),
            applied=done,
        )

    def _alertmanager(self, restart: bool) -> ReloadResult:
        base = self._url("alertmanager", "web")
        before = _metric_sum(base + "/metrics", "alertmanager_config_last_reload_success_timestamp_seconds")
        started = time.monotonic()
        try:
            r = requests.post(base + "/-/reload", timeout=30)
        except requests.RequestException as exc:
            raise LabError(
                f"alertmanager: the reload request failed: {exc}", "is Alertmanager running? `labctl status`"
            ) from None
        if r.status_code != 200:  # it answers once it has tried; a refused file leaves the old one running
            raise LabError(
                f"alertmanager: reload refused, the running configuration stays: {r.text.strip()}",
                "fix lab/alertmanager/alertmanager.yml, then `labctl reload alertmanager` again",
            )
        page = base + "/metrics"
        _wait(
            lambda: (
                _metric_sum(page, "alertmanager_config_last_reload_successful") == 1
                and (_metric_sum(page, "alertmanager_config_last_reload_success_timestamp_seconds") or 0)
                >= (before or 0)
            ),
            "Alertmanager to report the new configuration (alertmanager_config_last_reload_successful)",
        )
        return ReloadResult(
            "alertmanager",
            "POST /-/reload",
            round(time.monotonic() - started, 3),
            note="routes, receivers and inhibition re-read; firing alerts, silences and what was "
            "already notified are kept",
        )


def _prometheus_runtime(base: str) -> dict[str, Any]:
    try:
        r = requests.get(base + "/api/v1/status/runtimeinfo", timeout=3)
        return dict(r.json()["data"]) if r.status_code == 200 else {}
    except (requests.RequestException, ValueError, KeyError):
        return {}


def _metric_sum(url: str, name: str, having: str = "") -> float | None:
    """The sum of a metric's samples on a /metrics page (optionally only lines containing `having`)."""
    try:
        text = requests.get(url, timeout=3).text
    except requests.RequestException:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ") and having in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _last_scrape(base: str, job: str) -> float:
    """When Prometheus last scraped the job's target (epoch seconds; 0 when unknown)."""
    from labctl import scrape_targets

    targets = scrape_targets.read(base, timeout=3) or []
    return min((t.last_scrape or 0.0 for t in targets if t.job == job), default=0.0)


def _epoch(stamp: Any) -> float:
    from labctl.scrape_targets import timestamp

    return timestamp(stamp) or 0.0


def _wait(probe: Callable[[], Any], what: str, timeout: float = EFFECT_TIMEOUT) -> Any:
    value = poll(probe, timeout, 0.05)
    if not value:
        raise LabError(
            f"timed out after {timeout:.0f}s waiting for {what}", "`labctl logs <service>` says why"
        )
    return value


def _validate_grafana(root: Path) -> None:
    """Grafana has no offline validator: check what its provisioning reads parses and fits together."""
    prov = root / "dashboards" / "provisioning"
    problems: list[str] = []
    uids = set()
    for path in sorted(prov.rglob("*.y*ml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            problems.append(f"{path.relative_to(root)}: not valid YAML: {exc}")
            continue
        if not isinstance(doc, dict) or doc.get("apiVersion") != 1:
            problems.append(f"{path.relative_to(root)}: a provisioning file needs `apiVersion: 1` at the top")
        elif path.parent.name == "datasources":
            uids |= {str(d.get("uid")) for d in doc.get("datasources") or [] if isinstance(d, dict)}
    import json

    for path in sorted((root / "dashboards").glob("*.json")):
        try:
            board = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(f"{path.relative_to(root)}: not valid JSON: {exc}")
            continue
        for panel in board.get("panels") or []:
            ds = panel.get("datasource")
            uid = ds.get("uid") if isinstance(ds, dict) else None
            if uid and not uid.startswith("$") and uid not in uids:
                problems.append(
                    f"{path.relative_to(root)}: panel {panel.get('title')!r} uses datasource uid "
                    f"{uid!r}, which no provisioning file defines ({', '.join(sorted(uids)) or 'none'})"
                )
                break  # one line per dashboard is enough to find it
    if problems:
        raise LabError(
            "grafana: the edited provisioning is refused; the running configuration stays.\n"
            + "\n".join(problems),
            "fix the files named above, then `labctl reload grafana` again",
        )
