"""The runtime interface both runtimes implement, the status row they return, and runtime selection."""

from __future__ import annotations

import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labctl import ui
from labctl.errors import LabError
from labctl.lazy import requests  # on first use: the health probe below needs none
from labctl.model import LabModel, load_model
from labctl.poll import poll
from labctl.state import LabState


def alertmanager_known(url: str, timeout: float) -> bool:
    """Poll Prometheus' /api/v1/alertmanagers (url) until it lists an active Alertmanager."""

    def known() -> bool:
        try:
            reply = requests.get(url, timeout=2)
            return bool(reply.ok and reply.json()["data"]["activeAlertmanagers"])
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return False

    return bool(poll(known, timeout, 0.2))


# Prometheus re-reads its Alertmanager target (file_sd, 5 s refresh) and hands it to the notifier on
# the discovery manager's 5 s tick: well within this, even on a loaded machine.
ALERT_ROUTE_WAIT_S = 30.0


@dataclass
class ServiceStatus:
    service: str
    layer: int
    state: str  # running | stopped | exited | not available
    health: str  # healthy | unhealthy | - (not running)
    url: str | None
    pid: int | None = None
    detail: str = ""
    # Configuration files edited since the service (re)loaded them (lab.yaml `config:`; `labctl reload`).
    config_edited: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Runtime(ABC):
    name: str = "?"

    def __init__(self, lab: LabState, model: LabModel | None = None) -> None:
        self.lab = lab
        self.model = model or load_model()

    def preflight(self) -> None:  # noqa: B027 - most runtimes need nothing checked first
        """What must hold before `up` records anything (docker: engine and compose plugin)."""

    @abstractmethod
    def up(self, stage: str) -> None: ...

    @abstractmethod
    def down(self, volumes: bool = False, fresh: bool = False) -> None:
        """Stop every service. volumes: delete the data too. fresh: faults were active, so nothing the
        runtime keeps for a quick restart may be reused (Docker's stopped containers)."""

    @abstractmethod
    def status(self) -> list[ServiceStatus]: ...

    @abstractmethod
    def logs(self, service: str, follow: bool = False, lines: int = 200) -> None: ...

    @abstractmethod
    def stop_service(self, service: str) -> None: ...

    @abstractmethod
    def start_service(self, service: str) -> None: ...

    @abstractmethod
    def kill_service(self, service: str, signal: int) -> None: ...

    def restart(self, service: str) -> None:
        self.stop_service(service)
        self.start_service(service)

    def set_overrides(
        self, service: str, extra_configs: list[Path] | None = None, env: dict[str, str] | None = None
    ) -> None:
        """Persist extra config files / env for one service and apply them (faults use this). Files the
        service reads take what they can, so its process (and container) stays the same: the Collector
        reloads its overlays from its local slot on SIGHUP (runtimes/collector_slot.py), the proxy reads
        its override env from its local settings at a restart in place (runtimes/proxy_local.py). Any
        other change restarts the service with a new command or environment."""
        self.model.service(service)
        self.lab = self.lab.reload()
        env_before = process_env(service, self.lab.overrides.get(service, {}))
        if extra_configs or env:
            self.lab.overrides[service] = {
                "extra_configs": [str(Path(p).resolve()) for p in extra_configs or []],
                "env": dict(env or {}),
            }
        else:
            self.lab.overrides.pop(service, None)
        self.lab.save()
        override = self.lab.overrides.get(service, {})
        write_local_files(self.lab, service)
        # A service of the running stage is (re)started, also after a failed start: healing must work.
        if service in self.stage_services() or self.is_running(service):
            if process_env(service, override) != env_before:
                self.restart(service)
            elif service == "collector":
                if not self.reload_collector():
                    self.restart(service)  # a refused overlay: the restart reports its own words
            elif service == "proxy":
                self.restart_in_place(service)
            else:
                self.restart(service)

    def restart_in_place(self, service: str) -> None:
        """Restart with the same command and environment (docker: the same container)."""
        self.restart(service)

    def start_in_place(self, service: str) -> None:
        """Start a stopped service as it was (docker: its kept container), when nothing about it changed."""
        self.start_service(service)

    def reload_collector(self, timeout: float = 10.0) -> bool:
        """SIGHUP the running Collector and wait for its health_check's new upSince (the extension is
        rebuilt with the pipelines): True once the new configuration runs. False when it was not
        running or did not come back with it (a broken overlay makes it exit): the caller restarts it,
        which reports the Collector's own words."""
        import signal
        import time

        before = self.collector_up_since()
        if before is None:
            return False
        try:
            self.kill_service("collector", int(signal.SIGHUP))  # int: docker takes "1", not "Signals.SIGHUP"
        except LabError:
            return False
        deadline = time.monotonic() + timeout
        next_look = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            since = self.collector_up_since()
            if since is not None and since != before:
                from labctl.ops.config_files import record_applied

                record_applied(self.lab, self.model, ["collector"])
                return True
            if time.monotonic() > next_look:  # a configuration it refused: it exits
                if not self.is_running("collector"):
                    return False
                next_look = time.monotonic() + 0.5
            time.sleep(0.05)
        return False

    def collector_up_since(self) -> str | None:
        svc = self.model.service("collector")
        url = self.lab.url("collector", svc.health.port) + svc.health.path
        try:
            r = requests.get(url, timeout=1)
            return str(r.json().get("upSince")) if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    @abstractmethod
    def is_running(self, service: str) -> bool: ...

    def stage_services(self) -> list[str]:
        return self.model.stage_services(self.lab.stage, self.name) if self.lab.stage else []

    def service_url(self, service: str) -> str:
        svc = self.model.service(service)
        return self.lab.url(service, svc.url.port) + svc.url.path

    def wait_alert_route(self, timeout: float = ALERT_ROUTE_WAIT_S) -> None:
        """When the stage runs Alertmanager: return once Prometheus' notifier lists it.

        Prometheus finds its Alertmanager through a file_sd target written as the stage starts, and passes
        it to the notifier at most every 5 s. An alert that fires before that is dropped, and sent again
        only a minute later (its resend delay): a `labctl check` right after `up module-4` (or after a
        Prometheus restart) then waited in vain for its test notification.
        """
        wanted = self.stage_services()
        if "prometheus" not in wanted or "alertmanager" not in wanted or not self.is_running("alertmanager"):
            return
        url = self.lab.url("prometheus", "web") + "/api/v1/alertmanagers"
        if not alertmanager_known(url, timeout):
            ui.warn(
                f"Prometheus has not picked up Alertmanager after {timeout:.0f}s ({url} lists none): "
                "alerts may reach it only a minute late"
            )

    def probe(self, service: str, timeout: float = 1.0) -> bool:
        """One HTTP GET on the service's health endpoint (loopback host port: same for both runtimes)."""
        svc = self.model.service(service)
        url = self.lab.url(service, svc.health.port) + svc.health.path
        return http_status(url, timeout) == 200

    def probe_all(self, services: list[str], timeout: float = 1.0) -> dict[str, bool]:
        """probe() of every service at once: {service: answered}."""
        if len(services) < 2:
            return {s: self.probe(s, timeout) for s in services}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(services)) as pool:
            return dict(zip(services, pool.map(lambda s: self.probe(s, timeout), services), strict=True))


def http_status(url: str, timeout: float) -> int | None:
    """One GET: the status code, or None when nothing answered in time. The standard library's client,
    not requests: `status`, `up` and `down` probe with it, and importing requests (urllib3's async stack)
    would cost each of those commands about 0.15 s of CPU at start-up."""
    answer = _http_call(url, "GET", None, timeout, read=False)
    return None if answer is None else answer[0]


def http_json(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 1.0
) -> tuple[int, Any] | None:
    """One call with the standard library's client, like http_status: (status, JSON body, None when it
    has none), or None when nothing answered or the body is not JSON."""
    import json

    answer = _http_call(url, method, headers, timeout, read=True)
    if answer is None:
        return None
    try:
        return answer[0], json.loads(answer[1] or b"null")
    except ValueError:
        return None


def _http_call(
    url: str, method: str, headers: dict[str, str] | None, timeout: float, read: bool
) -> tuple[int, bytes] | None:
    """(status, body: empty unless `read`), or None when nothing answered in time."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read() if read else b""
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def process_env(service: str, override: dict[str, Any]) -> dict[str, str]:
    """The override env a service's process (or container) is given: what its local files do not carry."""
    from labctl.runtimes import collector_slot

    if service == "collector":
        return collector_slot.process_env(override)
    if service == "proxy":
        return {}  # all of it in its local settings
    return dict(override.get("env") or {})


def write_local_files(lab: LabState, service: str | None = None) -> None:
    """The files the Collector and the proxy read their overrides from (all of them when service is None);
    a runtime writes them before it starts either."""
    from labctl.runtimes import collector_slot, proxy_local

    if service in (None, "collector"):
        collector_slot.write_for(lab.dir, lab.overrides.get("collector", {}))
    if service in (None, "proxy"):
        proxy_local.write(lab.dir, dict(lab.overrides.get("proxy", {}).get("env") or {}))


def docker_engine() -> tuple[bool, str]:
    """(True, server version) when a Docker engine answers; else (False, why)."""
    docker = shutil.which("docker")
    if not docker:
        return False, "the docker CLI is not installed"
    try:
        out = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=8,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"docker did not answer ({exc})"
    if out.returncode != 0 or not out.stdout.strip():
        msg = (out.stderr.strip().splitlines() or ["no server version"])[-1]
        return False, f"no Docker engine answers: {msg}"
    return True, out.stdout.strip()


def choose_runtime(requested: str) -> str:
    if requested == "native":
        return "native"
    ok, why = docker_engine()
    if requested == "docker":
        if not ok:
            raise LabError(
                f"--runtime docker was requested but {why}",
                "start Docker (or install Docker Engine / Docker Desktop), or use `--runtime native`",
            )
        return "docker"
    if requested != "auto":
        raise LabError(f"unknown runtime {requested!r}", "use docker, native or auto")
    return "docker" if ok else "native"


def get_runtime(lab: LabState, model: LabModel | None = None) -> Runtime:
    if lab.runtime == "docker":
        from labctl.runtimes.docker import DockerRuntime

        return DockerRuntime(lab, model)
    from labctl.runtimes.native import NativeRuntime

    return NativeRuntime(lab, model)
