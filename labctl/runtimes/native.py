"""Native runtime: the lab's services as local processes, using the same configuration files as docker.

Processes run in their own session and outlive `labctl`; pid files, logs and data live in the state dir
(services/<name>/), so any later invocation finds them again.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal as signals
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from labctl import ui
from labctl.errors import LabError
from labctl.model import Placement
from labctl.ops.config_files import record_applied
from labctl.poll import poll
from labctl.runtimes import collector_slot, process
from labctl.runtimes.base import Runtime, ServiceStatus, process_env, write_local_files
from labctl.runtimes.ports import check_ports_free
from labctl.runtimes.targets import install_prometheus_config, write_receiver_url, write_targets


def _seconds_from_env(name: str, default: float) -> float:
    """A timeout a slow machine may raise (LABCTL_HEALTH_TIMEOUT, LABCTL_STOP_TIMEOUT), read when used."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise LabError(f"{name}={raw!r} is not a number of seconds", f"e.g. {name}={default:g}, or unset it")
    return value


def health_timeout() -> float:
    return _seconds_from_env("LABCTL_HEALTH_TIMEOUT", 60.0)


def stop_timeout() -> float:
    return _seconds_from_env("LABCTL_STOP_TIMEOUT", 8.0)


# Variables of the user's shell that would change how a service behaves (they configure the emulator or
# a real Claude Code, not the lab's own processes).
_SCRUB_PREFIXES = ("OTEL_", "LAB_", "GF_")


@dataclass
class Launch:
    service: str
    cmd: list[str]
    env: dict[str, str]  # the service's own variables (the full env adds the parent's)

    @property
    def fingerprint(self) -> str:
        return process.fingerprint(self.cmd, self.env)


class Unavailable(Exception):
    """An optional service that cannot run natively here (e.g. no Grafana binary); up continues without it."""


class NativeRuntime(Runtime):
    name = "native"
    auto_install = False  # `labctl up --install`: build/install missing binaries instead of failing

    # --- where things are -------------------------------------------------------------------------

    def placement(self) -> Placement:
        return Placement(
            runtime="native",
            ports=self.lab.ports,
            repo=self.model.root,
            data_dirs={s: self.lab.data_dir(s) for s in self.model.services},
            settings=self.lab.settings,
            lab_dir=self.lab.dir,
        )

    def record(self, service: str) -> process.ProcRecord | None:
        return process.read_record(self.lab.pid_path(service))

    def is_running(self, service: str) -> bool:
        rec = self.record(service)
        return rec is not None and rec.alive()

    def running_services(self) -> list[str]:
        return [s for s in self.model.ordered(list(self.model.services)) if self.is_running(s)]

    # --- building the command line -----------------------------------------------------------------

    def launch(self, service: str, stage_services: list[str] | tuple[str, ...]) -> Launch:
        """The exact command and env for a service; Unavailable for an optional one that cannot run here."""
        svc = self.model.service(service)
        if service == "grafana":
            self.lab.ensure_secret("grafana_admin_password")  # never Grafana's default admin password
        where = self.placement()
        extra: dict[str, str] = {}
        if svc.native.python_module:
            if service == "proxy" and not _proxy_available():
                raise Unavailable(
                    "the logging proxy is not part of this build yet (no `labctl proxy serve`); "
                    "nothing listens on the proxy ports"
                )
            if service == "proxy" and self.auto_install:
                _ensure_grpc_front()
            cmd = [sys.executable, "-m", svc.native.python_module]
        elif svc.native.binary:
            try:
                binary = self._binary(svc.native.binary)
                if service == "grafana":
                    from labctl.install import grafana_home

                    extra["grafana_home"] = str(grafana_home(binary))
            except LabError as exc:
                if svc.optional:
                    # One short line for the status table: the two ways to get it (`labctl doctor`
                    # has the full how-to).
                    if "was not found" not in exc.message:
                        raise Unavailable(exc.message) from None
                    from labctl.install.resolve import BINARIES

                    image = self.model.versions.get(f"LAB_{service.upper()}_IMAGE", "")
                    raise Unavailable(
                        f"no {svc.native.binary} binary: `labctl install {BINARIES[svc.native.binary]}`"
                        + (f", or Docker (image {image})" if image else "")
                    ) from None
                raise
            cmd = [str(binary)]
        else:
            raise LabError(f"lab.yaml: service {service} has no native binary or python_module")
        if extra:
            where = Placement(**{**where.__dict__, "extra": extra})
        cmd += self.model.native_args(service, where)
        env = self.model.service_env(service, where, stage_services)
        override = self.lab.overrides.get(service) or {}
        if override.get("extra_configs") and service != "collector":
            raise LabError(f"{service} does not take extra configuration files", "only the collector does")
        write_local_files(self.lab, service)  # the Collector's slot, the proxy's local settings
        if service == "collector":  # its local slot, always loaded: overlays apply by reload
            cmd += collector_slot.config_args([str(p) for p in collector_slot.slot_paths(self.lab.dir)])
        env.update(process_env(service, override))
        return Launch(service=service, cmd=cmd, env=env)

    def _binary(self, name: str) -> Path:
        """Configured path, PATH, the lab's cache — then, with `up --install`, build/install it now."""
        from labctl.install import BINARIES, install, resolve_binary

        try:
            return resolve_binary(name)
        except LabError as exc:
            if not self.auto_install:
                exc.hint = f"{exc.hint or ''}; or let `labctl up <module> --install` do it".lstrip("; ")
                raise
            ui.info(f"{name} is missing: running `labctl install {BINARIES[name]}` (cached afterwards)")
            install(BINARIES[name])
            return resolve_binary(name)

    def _full_env(self, launch: Launch) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
        base.update(launch.env)
        # The proxy is our own Python package: make sure it imports this checkout, whatever the cwd.
        base["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(self.model.root), os.environ.get("PYTHONPATH")])
        )
        base.setdefault("PYTHONUNBUFFERED", "1")
        return base

    # --- up ------------------------------------------------------------------------------------------

    def up(self, stage: str) -> None:
        wanted = self.model.ordered(self.model.stage_services(stage, self.name))
        # Layers above the requested stage go first (`up module-2` after module-4).
        above = [s for s in self.running_services() if s not in wanted]
        if above:
            self._stop(above, reason="not part of " + stage)

        launches: dict[str, Launch] = {}
        unavailable: dict[str, str] = {}
        for service in wanted:
            try:
                launches[service] = self.launch(service, wanted)
            except Unavailable as why:
                unavailable[service] = str(why)

        to_start: list[str] = []
        restart: list[str] = []
        for service, launch in launches.items():
            rec = self.record(service)
            if rec is not None and rec.alive():
                if rec.fingerprint != launch.fingerprint:
                    restart.append(service)  # e.g. the proxy gains its upstream when the collector joins
            else:
                to_start.append(service)
        if restart:
            # Completes `up`'s plan (starts/keeps/stops): these were kept, and now start again.
            ui.item("restarts:", f"{', '.join(restart)} (configuration changed)", label_width=9)
            self._stop(restart, reason="its configuration changed")
            to_start = self.model.ordered(to_start + restart)

        check_ports_free(
            [(s, name, self.lab.port(s, name)) for s in to_start for name in self.model.service(s).ports],
            stage,
        )
        self.lab.stage = stage
        self.lab.settings["unavailable"] = unavailable
        self.lab.save()
        if "prometheus" in wanted and "prometheus" not in to_start:
            # A running Prometheus keeps going across stages: its Alertmanager target follows the stage.
            self._write_targets(wanted)
        for service, reason in unavailable.items():
            if not self.model.service(service).optional:  # optional: `up` says it in one line
                ui.warn(f"{service} is not running: {reason}")
        for service in to_start:
            self._start(launches[service])
        self._wait_healthy(to_start)
        self.wait_alert_route()

    def _prepare(self, service: str) -> None:
        data = self.lab.data_dir(service)
        data.mkdir(parents=True, exist_ok=True)
        if service == "prometheus":
            install_prometheus_config(self.model, data)
            self._write_targets(self.stage_services())
        if service == "alertmanager":
            # Its webhook's `url_file: receiver-url`, read from its working directory (the data dir).
            write_receiver_url(self.model, data, self.placement())

    def _write_targets(self, stage_services: list[str]) -> None:
        # Through the relays where the model says so (the collector-prometheus hops, the alert relay).
        targets = self.lab.data_dir("prometheus") / "targets"
        write_targets(self.model, targets, self.lab.addr, relayed=True, running=stage_services)

    def _start(self, launch: Launch) -> None:
        self._prepare(launch.service)
        process.spawn(
            launch.cmd,
            self._full_env(launch),
            self.lab.log_path(launch.service),
            cwd=self.lab.data_dir(launch.service),
            pid_path=self.lab.pid_path(launch.service),
            # Only the lab's own settings count: the user's shell env may differ between invocations.
            fingerprint=launch.fingerprint,
        )
        record_applied(self.lab, self.model, [launch.service])  # `labctl status` names files edited later

    def _wait_healthy(self, services: list[str], timeout: float | None = None) -> None:
        if not services:
            return
        timeout = health_timeout() if timeout is None else timeout
        pending = list(services)
        with ui.progress() as prog:
            tasks = {s: prog.add_task(f"waiting for {s} to become healthy", total=None) for s in services}

            def all_healthy() -> bool:
                for service in list(pending):
                    rec = self.record(service)
                    if rec is None or not rec.alive():
                        raise self._start_failure(service, "exited while starting")
                    if self.probe(service, timeout=0.5):
                        pending.remove(service)
                        prog.update(tasks[service], description=f"[green]{service} is healthy[/]")
                        prog.stop_task(tasks[service])
                return not pending

            if not poll(all_healthy, timeout, 0.1):
                raise self._start_failure(pending[0], f"was not healthy after {timeout:.0f}s")

    def _start_failure(self, service: str, what: str) -> LabError:
        svc = self.model.service(service)
        url = self.lab.url(service, svc.health.port) + svc.health.path
        log = self.lab.log_path(service)
        last = process.tail(log, 15)
        return LabError(
            f"{service} {what} (health: {url}).\nLast lines of {log}:\n{last}",
            f"read the full log with `labctl logs {service}`, fix the cause, then run `labctl up {self.lab.stage}` "
            "again (`labctl doctor` checks ports and binaries)",
        )

    # --- stop ----------------------------------------------------------------------------------------

    def _stop(self, services: list[str], reason: str = "", timeout: float | None = None) -> None:
        timeout = stop_timeout() if timeout is None else timeout
        records = [(s, r) for s in services if (r := self.record(s)) is not None]
        killed = process.terminate([r for _, r in records], timeout=timeout)
        for s, rec in records:
            if rec in killed:
                ui.warn(f"{s} did not stop within {timeout:.0f}s of SIGTERM and was killed (SIGKILL)")
            self.lab.pid_path(s).unlink(missing_ok=True)

    def down(self, volumes: bool = False, fresh: bool = False) -> None:
        del fresh  # native keeps nothing between `down` and `up` but the data
        present = [s for s in self.model.services if self.lab.pid_path(s).exists()]
        self._stop(list(reversed(self.model.ordered(present))))
        # A service started by an `up` that was killed before it wrote the pid file: found by its
        # working directory, the service's own data folder.
        left = process.strays({self.lab.data_dir(s) for s in self.model.services})
        if left:
            process.terminate(left, timeout=stop_timeout())
        self.lab.path.unlink(missing_ok=True)
        if volumes:
            shutil.rmtree(self.lab.dir / "services", ignore_errors=True)

    def stop_service(self, service: str) -> None:
        self.model.service(service)
        self._stop([service])

    def start_service(self, service: str) -> None:
        self.lab = self.lab.reload()
        stage_services = self.stage_services()
        if self.is_running(service):
            return
        try:
            launch = self.launch(service, stage_services)
        except Unavailable as why:
            raise LabError(f"{service} cannot run natively here: {why}") from None
        check_ports_free(
            [(service, n, self.lab.port(service, n)) for n in self.model.service(service).ports],
            self.lab.stage or "module-1",
        )
        self._start(launch)
        self._wait_healthy([service])
        if service in ("prometheus", "alertmanager"):
            self.wait_alert_route()

    def kill_service(self, service: str, signal: int) -> None:
        rec = self.record(service)
        if rec is None or not process.send_signal(rec, signal):
            raise LabError(
                f"{service} is not running", f"start it with `labctl up {self.lab.stage or 'module-1'}`"
            )
        if signal in (signals.SIGKILL, signals.SIGTERM):
            process.terminate([rec], timeout=stop_timeout())

    # --- status and logs -----------------------------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        stage = self.stage_services()
        unavailable = self.lab.settings.get("unavailable") or {}
        rows = []
        for service in self.model.ordered(list(self.model.services)):
            svc = self.model.service(service)
            rec = self.record(service)
            alive = rec is not None and rec.alive()
            if not alive and service not in stage:
                continue
            if alive:
                proc = rec.process() if rec else None
                try:
                    stopped = proc is not None and proc.status() == psutil.STATUS_STOPPED  # SIGSTOP (freeze)
                except psutil.Error:
                    stopped = False
                state = "frozen" if stopped else "running"
                health = "healthy" if self.probe(service) else "unhealthy"
                detail = "" if service in stage else f"not part of {self.lab.stage}"
            elif service in unavailable:
                state, health, detail = "not available", "-", unavailable[service]
            else:
                state, health = ("exited" if rec else "stopped"), "-"
                detail = f"see `labctl logs {service}`" if rec else ""
            rows.append(
                ServiceStatus(
                    service=service,
                    layer=svc.layer,
                    state=state,
                    health=health,
                    url=self.service_url(service),
                    pid=rec.pid if alive and rec else None,
                    detail=detail,
                )
            )
        return rows

    def logs(self, service: str, follow: bool = False, lines: int = 200) -> None:
        self.model.service(service)
        path = self.lab.log_path(service)
        if not path.exists():
            raise LabError(f"{service} has no log yet ({path})", f"is {service} part of the running stage?")
        sys.stdout.write(process.tail(path, lines) + "\n")
        sys.stdout.flush()
        if not follow:
            return
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            try:
                while True:
                    chunk = fh.read()
                    if chunk:
                        sys.stdout.write(chunk.decode(errors="replace"))
                        sys.stdout.flush()
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                return


def _ensure_grpc_front() -> None:
    """`up --install` with Go at hand: the proxy's Go gRPC front too. Optional: where it cannot be
    built the proxy's Python front serves gRPC, so a failure is a warning."""
    from labctl.install.gobuild import has_go
    from labctl.proxy.grpc_front import CHOICE_VAR, go_front

    try:
        if not has_go() or os.environ.get(CHOICE_VAR, "").strip().lower() == "python" or go_front():
            return
        ui.info("the proxy's Go gRPC front is missing: running `labctl install grpc-front`")
        from labctl.install import install

        install("grpc-front")
    except LabError as exc:
        ui.warn(f"the proxy's Go gRPC front is not built ({exc.message}): its Python front serves gRPC")


def _proxy_available() -> bool:
    """The proxy is another work package: run it only once `labctl proxy serve` exists in this build."""
    return (
        importlib.util.find_spec("labctl.proxy") is not None
        and importlib.util.find_spec("labctl.cli.proxy_commands") is not None
    )
