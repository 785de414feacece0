"""Docker runtime: the compose files under compose/ (one per layer), driven through python-on-whales.

Every compose call goes through `client()`, which adds the layer files, the project name of this lab
instance and the env files (pinned versions + this instance's ports, images and generated settings). It
runs compose with the shell's LAB_* and COMPOSE_* variables removed: compose would let them override the
instance's env file (a stray LAB_PORT_PROXY_ADMIN would publish another port than labctl believes).
Image overrides are read by labctl itself at `up` (labctl/runtimes/docker_images.py) and written to the
env file. Nothing outside the lab's own compose project is ever touched (no prune).

`up` writes the env file before any compose call, makes sure every image is here (pulls what is missing,
builds the proxy image when its content changed) and records the stage only once the stage is up. When
nothing the stage's containers were made from changed since compose last brought it up (the usual `up`
after `down`), it starts the kept containers itself instead of running compose (runtimes/docker_warm.py).

Compose starts containers without `--wait`: its wait follows the images' healthchecks, whose first run
comes one interval (2 s) after the start, and a container that exits at once is only reported when
compose gives up. labctl polls each service's health endpoint on its published port instead (the URL
the healthcheck asks, every POLL_S) and the containers' state twice a second, so a ready service is
seen within a tenth of a second and one that exits is reported with its last log lines.

Over 500 lines because it is one class, the Runtime interface (runtimes/base.py) on Docker: each
method is one lab operation through the same compose client and container look-up; reading image
overrides already lives in docker_images.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labctl import ui
from labctl.errors import LabError
from labctl.model import DOCKER_REPO, LabModel, Placement, read_env_file
from labctl.ops.config_files import record_applied
from labctl.runtimes import collector_slot, docker_images, docker_warm, proxy_local
from labctl.runtimes.base import Runtime, ServiceStatus, docker_engine, process_env, write_local_files
from labctl.runtimes.compose_names import compose_project, container_name
from labctl.runtimes.docker_images import clean_call
from labctl.runtimes.ports import check_ports_free, port_in_use
from labctl.runtimes.targets import write_receiver_url, write_targets
from labctl.state import LabState, find_free_ports

if TYPE_CHECKING:
    from python_on_whales import DockerClient

READY_TIMEOUT = 180.0  # seconds a started service may take to answer (slow machines, first Prometheus)
POLL_S = 0.1  # between two rounds of health probes while services start
STATE_EVERY_S = 0.5  # between two looks at the containers' state (an exited one fails the wait at once)
NO_PROXY_IMAGE = "labctl-proxy:not-built"  # env file placeholder until `up` built the proxy image
PROXY_IMAGE_SERVICES = {
    "proxy",
    "model-stub",
    "notify-receiver",
}  # labctl's own services: they run the proxy image


def port_var(service: str, port: str) -> str:
    """Compose variable carrying a host port: proxy.otlp_grpc -> LAB_PORT_PROXY_OTLP_GRPC (`-` becomes `_`:
    model-stub.api -> LAB_PORT_MODEL_STUB_API, a valid variable name)."""
    return f"LAB_PORT_{service.upper()}_{port.upper()}".replace("-", "_")


def compose_dir(model: LabModel) -> Path:
    return model.root / "compose"


def layer_files(model: LabModel, layer: int) -> list[Path]:
    """compose/module-1.yml .. module-<layer>.yml: each stage is the files of its layer and below."""
    return [compose_dir(model) / f"module-{n}.yml" for n in range(1, layer + 1)]


@dataclass(frozen=True)
class Box:
    """One container of the lab, as `docker inspect` reports its state."""

    id: str
    status: str  # created, running, paused, restarting, exited, dead
    running: bool  # also while paused (Docker's own State.Running)
    paused: bool
    health: str  # healthy, unhealthy, starting; "" without a healthcheck

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Box:
        st = doc.get("State") or {}
        return cls(
            id=str(doc.get("Id", "")),
            status=str(st.get("Status", "")),
            running=bool(st.get("Running")),
            paused=bool(st.get("Paused")),
            health=str((st.get("Health") or {}).get("Status") or ""),
        )


class DockerRuntime(Runtime):
    name = "docker"
    ready_timeout: float = READY_TIMEOUT  # seconds to wait for started services to answer their probe

    def __init__(
        self, lab: LabState, model: LabModel | None = None, client_call: list[str] | None = None
    ) -> None:
        super().__init__(lab, model)
        # client_call lets tests point python-on-whales at another docker-compatible CLI.
        self.client_call = client_call or ["docker"]
        self._listed: dict[str, Box] | None = None  # the project's containers, until the next compose change
        self._preflight_done = False
        self._engine: tuple[bool, str] | None = None

    @property
    def project(self) -> str:
        return compose_project(self.lab.instance)

    @property
    def env_file(self) -> Path:
        return self.lab.dir / "compose.env"

    @property
    def build_log(self) -> Path:
        return self.lab.dir / "logs" / "proxy-build.log"

    @property
    def override_file(self) -> Path:
        return self.lab.dir / "compose.override.yml"

    @property
    def targets_dir(self) -> Path:
        return self.lab.dir / "services" / "prometheus" / "targets"

    @property
    def alertmanager_run_dir(self) -> Path:
        """Alertmanager's working directory in its container: the webhook's receiver-url file."""
        return self.lab.dir / "services" / "alertmanager" / "run"

    def files(self, layer: int | None = None) -> list[Path]:
        if layer is None:
            layer = (
                self.model.stage(self.lab.stage).layer
                if self.lab.stage
                else max(s.layer for s in self.model.stages.values())
            )
        files = layer_files(self.model, layer)
        if self.lab.overrides and self.override_file.exists():
            files.append(self.override_file)
        return files

    def client(self, layer: int | None = None) -> DockerClient:
        from python_on_whales import DockerClient  # imported when used: faults and checks start faster

        if not self.env_file.exists():
            self.write_env_file()  # compose interpolates every file: it needs the instance's variables
        return DockerClient(
            compose_files=list[str | Path](self.files(layer)),
            compose_project_name=self.project,
            compose_project_directory=compose_dir(self.model),
            compose_env_files=[compose_dir(self.model) / "versions.env", self.env_file],
            client_call=clean_call(self.client_call),
        )

    def images(self) -> dict[str, str]:
        """Each role's image for this lab: the shell's LAB_*_IMAGE at `up`, else recorded, else pinned."""
        return docker_images.chosen_images(self.model, self.lab.settings.get("images"))

    # --- files written per instance ----------------------------------------------------------------

    def write_env_file(self) -> None:
        """Host ports, the targets dir and generated secrets, for compose's `${...}` interpolation."""
        lines = ["# Written by labctl for this lab instance; read by docker compose (--env-file)."]
        for service, ports in sorted(self.lab.ports.items()):
            if service in self.model.services and self.name not in self.model.service(service).runtimes:
                continue  # native-only (the scrape and query relays): no compose variable
            for name, port in sorted(ports.items()):
                lines.append(f"{port_var(service, name)}={port}")
        lines.append(f"LAB_PROMETHEUS_TARGETS_DIR={self.targets_dir}")
        lines.append(f"LAB_ALERTMANAGER_RUN_DIR={self.alertmanager_run_dir}")
        lines.append(f"LAB_COLLECTOR_LOCAL_DIR={collector_slot.slot_dir(self.lab.dir)}")
        lines.append(f"LAB_PROXY_LOCAL_DIR={proxy_local.path(self.lab.dir).parent}")
        lines.append(f"LAB_GRAFANA_ADMIN_PASSWORD={self.lab.ensure_secret('grafana_admin_password')}")
        lines.append(f"LAB_AUTH_TOKEN={self.lab.settings.get('auth_token', '')}")  # `up --auth`; empty = off
        lines.append(f"LAB_BIND={self.lab.settings.get('bind') or '127.0.0.1'}")  # `up --bind`: shared ports
        lines.append(f"LAB_INSTANCE={self.lab.instance}")  # lets `down --volumes` find the project later
        for role, ref in sorted(self.images().items()):
            lines.append(f"{docker_images.IMAGE_VARS[role]}={ref}")
        lines.append(f"LAB_PROXY_IMAGE={self.lab.settings.get('proxy_image') or NO_PROXY_IMAGE}")
        self.lab.dir.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o600)

    def write_targets(self, services: list[str] | None = None) -> None:
        # Inside the compose network Prometheus reaches services by name on their container ports.
        def addr(service: str, port: str) -> str:
            return f"{service}:{self.model.service(service).port(port).container}"

        # `services`: the stage being started (lab.stage is recorded only once it is up).
        write_targets(self.model, self.targets_dir, addr, running=services or self.stage_services())
        where = Placement(runtime="docker", ports=self.lab.ports, repo=self.model.root)
        write_receiver_url(self.model, self.alertmanager_run_dir, where)

    def override_doc(self) -> dict[str, Any]:
        """Compose overrides from runtime.set_overrides: env only. The Collector's extra configs go into
        its local slot (runtimes/collector_slot.py), which module-2.yml always mounts and loads: neither
        its command nor its mounts change with a fault, and no fault recreates its container."""
        services: dict[str, Any] = {}
        for service, override in self.lab.overrides.items():
            if override.get("extra_configs") and service != "collector":
                raise LabError(
                    f"{service} does not take extra configuration files", "only the collector does"
                )
            env = process_env(service, override)
            if env:
                services[service] = {"environment": {k: str(v) for k, v in env.items()}}
        return {"services": services}

    @staticmethod
    def collector_args() -> list[str]:
        """The Collector's command in compose/module-2.yml: base.yaml, then its local slot."""
        slot = [f"{collector_slot.CONTAINER_DIR}/{name}" for name in collector_slot.SLOT_FILES]
        return collector_slot.config_args([f"{DOCKER_REPO}/collector-configs/base.yaml", *slot])

    def container_path(self, path: Path) -> str:
        """A repo file as the containers see it (the repo's folders are mounted under /lab)."""
        try:
            rel = path.resolve().relative_to(self.model.root)
        except ValueError:
            raise LabError(
                f"{path} is outside the lab repository, so containers cannot see it",
                "keep override files under collector-configs/",
            ) from None
        return f"{DOCKER_REPO}/{rel}"

    def set_overrides(
        self, service: str, extra_configs: list[Path] | None = None, env: dict[str, str] | None = None
    ) -> None:
        super().set_overrides(service, extra_configs, env)
        self.write_override()  # also when the service is stopped: its next start uses it

    def write_override(self) -> None:
        doc = self.override_doc()
        if doc["services"]:
            self.override_file.write_text(yaml.safe_dump(doc, sort_keys=True))
        else:
            self.override_file.unlink(missing_ok=True)
        write_local_files(self.lab)  # the Collector's slot and the proxy's local settings: mounted

    # --- lifecycle -----------------------------------------------------------------------------------

    def engine(self) -> tuple[bool, str]:
        """docker_engine(), asked once per command (each ask is a `docker version`)."""
        if self._engine is None or not self._engine[0]:
            self._engine = docker_engine()
        return self._engine

    def require_engine(self) -> None:
        ok, why = self.engine()
        if not ok:
            raise LabError(
                f"the lab uses the docker runtime but {why}",
                "start Docker, or `labctl down` and `labctl --runtime native up <module>`",
            )

    def preflight(self) -> None:
        """Before anything is recorded: an engine answers and the compose plugin is there."""
        if self._preflight_done:
            return
        self.require_engine()
        problem = compose_problem(self.client_call)
        if problem:
            raise LabError(f"the docker runtime needs Docker Compose v2, but {problem}", COMPOSE_HINT)
        self._preflight_done = True

    def up(self, stage: str) -> None:
        layer = self.model.stage(stage).layer  # unknown stage: LabError
        self.preflight()
        services = self.model.stage_services(stage, self.name)  # the scrape and query relays are native only
        images = self.images()
        self.lab.settings["images"] = images
        self.write_env_file()  # before any compose call (listing containers interpolates the files too)
        unavailable, image_ids = self._ensure_images(services, images)
        services = [s for s in services if s not in unavailable]
        self.lab.settings["unavailable"] = unavailable  # `status` and `up` say it in one line each
        if PROXY_IMAGE_SERVICES & set(services):
            self.lab.settings["proxy_image"] = docker_images.ensure_proxy_image(
                self.model,
                images["python"],
                self.build_log,
                self.client_call,
                progress=ui.info,
                python_id=image_ids.get(images["python"]),
            )
        self.prepare_files(services)
        new = [s for s in services if not self.is_running(s)]
        check_ports_free(
            [(s, n, self.lab.port(s, n)) for s in new for n in self.model.service(s).ports], stage
        )
        digest = self._inputs_digest(layer, services, images)
        if not self._start_kept(digest, services):
            ui.info(f"starting {', '.join(services)} (docker compose, project {self.project})")
            docker_warm.forget(self.lab.dir)  # until this compose run is up and recorded again
            self._compose(
                # Only the services it can run (without an optional one whose image is missing); images:
                # checked above. The stage's other containers (a higher stage's) go as orphans.
                lambda c: c.compose.up(
                    services if unavailable else None, detach=True, remove_orphans=True, pull="never"
                ),
                "start the lab",
                layer=layer,
            )
        self._wait_ready(services)
        made = {s: c.id for s, c in self._containers().items() if s in services}
        if len(made) == len(services):
            docker_warm.record(self.lab.dir, digest, made)
        self.lab.stage = stage  # recorded only once the stage is up
        record_applied(self.lab, self.model, services)  # saves; `labctl status` names files edited later
        self.wait_alert_route()

    def _inputs_digest(self, layer: int, services: list[str], images: dict[str, str]) -> str:
        """What compose makes this stage's containers from (docker_warm.inputs_digest), images by id."""
        refs = [images[s] for s in services if s in images]
        if PROXY_IMAGE_SERVICES & set(services):
            refs.append(str(self.lab.settings["proxy_image"]))
        env_files = [compose_dir(self.model) / "versions.env", self.env_file]
        return docker_warm.inputs_digest(
            self.project,
            compose_dir(self.model),
            [*self.files(layer), *env_files],
            services,
            docker_images.image_ids(refs, self.client_call),
        )

    def _start_kept(self, digest: str, services: list[str]) -> bool:
        """Start the kept containers without compose when they are exactly what this `up` would make
        (docker_warm): True when done, False when compose must run (it also runs when a start fails)."""
        if self.lab.faults:
            return False  # a fault may have changed a running container in place: compose repairs it
        found = {s: (c.id, c.status, c.paused) for s, c in self._containers().items()}
        ids = docker_warm.kept_to_start(self.lab.dir, digest, services, found)
        if ids is None:
            return False
        if ids:
            ui.info(f"starting the kept containers of project {self.project} (nothing to recreate)")
            # The proxy first: its Python start-up is the longest wait.
            ids.sort(key=lambda cid: cid != found.get("proxy", ("",))[0])
            self._listed = None
            problem = docker_warm.start_all(clean_call(self.client_call), ids)
            if problem:
                ui.info(f"docker could not start a kept container ({problem}); compose takes over")
                return False
        return True

    def _ensure_images(
        self, services: list[str], images: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Every image the stage runs is here, or pulled now; else one line naming it and how to get it.
        An optional service (lab.yaml `optional`: Grafana) whose image cannot be had does not stop the
        stage: returned as {service: why, and how to get it}, for `up` and `status` to say; with the ids
        of the images that were already here (ref -> id)."""
        roles = [s for s in services if s in images] + (
            ["python"] if PROXY_IMAGE_SERVICES & set(services) else []
        )
        present = docker_images.image_ids([images[r] for r in roles], self.client_call)
        unavailable: dict[str, str] = {}
        for role in roles:
            ref = images[role]
            if ref in present:
                continue
            ui.info(f"pulling {ref} ({role})")
            reason = docker_images.pull(ref, self.client_call)
            if not reason:
                continue
            if role in self.model.services and self.model.service(role).optional:
                unavailable[role] = f"no image {ref} (`labctl images`)"
                continue
            what = "the proxy's base image" if role == "python" else f"{role}'s image"
            raise LabError(
                f"{what} {ref} is not on this machine and cannot be pulled ({reason})",
                docker_images.how_to_get(ref),
            )
        return unavailable, present

    def prepare_files(self, services: list[str] | None = None) -> None:
        self.write_env_file()
        self.write_targets(services)
        self.write_override()

    def _wait_ready(
        self, services: tuple[str, ...] | list[str], restarts_before: dict[str, int] | None = None
    ) -> None:
        """Every service answers its health probe on its published port, or a clear error: one that exited
        (or restarts in a loop) at once with its last log lines, one that never answers after ready_timeout."""
        pending = [s for s in services if s in self.model.services]
        deadline = time.monotonic() + self.ready_timeout
        next_look = time.monotonic() + STATE_EVERY_S
        while True:
            answered = self.probe_all(pending, timeout=0.5)
            pending = [s for s in pending if not answered[s]]
            if not pending:
                return
            now = time.monotonic()
            if now >= next_look:
                self._fail_if_exited(pending, restarts_before or {})
                next_look = now + STATE_EVERY_S
            if now > deadline:
                names = ", ".join(pending)
                raise LabError(
                    f"{names} {'was' if len(pending) == 1 else 'were'} not healthy after "
                    f"{self.ready_timeout:.0f}s",
                    f"read `labctl logs {pending[0]}`, fix the cause, then `labctl up` again",
                )
            time.sleep(POLL_S)

    def _inspect_states(self, services: list[str]) -> dict[str, tuple[str, int, str, str]]:
        """service -> (status, restart count, exit code, container name) of its container."""
        by_name = {container_name(self.lab.instance, s): s for s in services}
        out = subprocess.run(
            [*clean_call(self.client_call), "container", "inspect", "--format",
             "{{.Name}} {{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", *by_name],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        states = {}
        for line in out.stdout.splitlines():
            name, status, restarts, code = [*line.split(), "", "", "", ""][:4]
            service = by_name.get(name.lstrip("/"))
            if service:
                states[service] = (status, int(restarts) if restarts.isdigit() else 0, code, name.lstrip("/"))
        return states

    def _restart_counts(self, services: list[str]) -> dict[str, int]:
        return {s: state[1] for s, state in self._inspect_states(services).items()}

    def _fail_if_exited(self, services: list[str], restarts_before: dict[str, int]) -> None:
        for service, (status, restarts, code, name) in self._inspect_states(services).items():
            # A created or started container counts its restarts from 0 (a restarted one from where it
            # was): one more restart means it exited.
            if status in ("exited", "dead", "restarting") or restarts > restarts_before.get(service, 0):
                tail = subprocess.run(
                    [*clean_call(self.client_call), "logs", "--tail", "8", name],
                    capture_output=True, text=True, timeout=20, check=False,
                )  # fmt: skip
                said = (tail.stdout + tail.stderr).strip()
                raise LabError(
                    f"{service} exited while starting (exit code {code}):\n{said}".rstrip(),
                    f"`labctl logs {service}` shows why; fix the cause, then `labctl up` again",
                )

    def _compose(self, call: Any, what: str, layer: int | None = None) -> Any:
        from python_on_whales.exceptions import DockerException

        self._listed = None  # whatever this call does, the next listing asks the engine again
        try:
            return call(self.client(layer))
        except DockerException as exc:
            detail = (exc.stderr or exc.stdout or str(exc)).strip().splitlines()[-8:]
            raise LabError(
                f"docker compose failed to {what}:\n" + "\n".join(detail),
                "`labctl status` and `labctl logs <service>` show what failed; `labctl doctor` checks the engine",
            ) from None

    def down(self, volumes: bool = False, fresh: bool = False) -> None:
        """Stop the lab. Its containers and networks are kept, stopped (ports free, nothing running), so
        the next `up` only starts them; compose still recreates whatever that `up` changes (stage, ports,
        images, overrides). `volumes` removes everything of the project: containers, networks, volumes
        and the instance's files. `fresh` removes the containers too: faults were active, and a kept
        container would carry what they changed in place (a cut network, a file copied in)."""
        ok, why = self.engine()
        if not ok:
            raise LabError(
                f"cannot stop the docker lab: {why}",
                f"start Docker and run `labctl down` again (to forget this lab instead, delete {self.lab.path})",
            )
        # All layer files, so every service of this project is found, whatever stage is running.
        top = max(s.layer for s in self.model.stages.values())
        self._remove_extras()  # not services of the files: `compose stop` would leave them running
        if volumes or fresh:
            docker_warm.forget(self.lab.dir)
            self._compose(
                lambda c: c.compose.down(remove_orphans=True, volumes=volumes, timeout=5),
                "stop the lab",
                layer=top,
            )
        else:
            self._compose(lambda c: c.compose.stop(timeout=5), "stop the lab", layer=top)
        self.lab.path.unlink(missing_ok=True)
        if volumes:
            # The instance's files too: its env file holds Grafana's admin password.
            for path in (self.env_file, self.override_file, docker_warm.record_path(self.lab.dir)):
                path.unlink(missing_ok=True)
            for folder in ("services", "logs"):
                shutil.rmtree(self.lab.dir / folder, ignore_errors=True)

    def _remove_extras(self) -> None:
        """The project's containers that are no service of its files: a network fault's stand-ins
        (labelled org.labctl.fault, e.g. left by an interrupted `break`) and check's timed scrape probes
        (service check-probe: a `check` that ended just before may have left one running, which `--rm`
        removes only when it exits). Removed, and waited for until the engine lists none (at most 10 s)."""
        call = clean_call(self.client_call)

        def listed() -> list[str]:
            ids: list[str] = []
            for label in ("org.labctl.fault", "com.docker.compose.service=check-probe"):
                out = subprocess.run(
                    [*call, "ps", "-aq",
                     "--filter", f"label=com.docker.compose.project={self.project}",
                     "--filter", f"label={label}"],
                    capture_output=True, text=True, timeout=20, check=False,
                )  # fmt: skip
                ids += out.stdout.split()
            return ids

        ids = listed()
        if not ids:
            return
        subprocess.run([*call, "rm", "--force", *ids], capture_output=True, timeout=60, check=False)
        deadline = time.monotonic() + 10
        while listed() and time.monotonic() < deadline:
            time.sleep(0.2)  # a container whose --rm was already under way is gone a moment later

    def _containers(self) -> dict[str, Box]:
        """The project's containers by service: one `docker ps` and one `docker inspect` (compose's own
        `ps` parses every compose file, and each container's state was another `docker inspect`)."""
        if self._listed is not None:
            return self._listed
        call = clean_call(self.client_call)
        listed = subprocess.run(
            [*call, "ps", "-aq", "--no-trunc",
             "--filter", f"label=com.docker.compose.project={self.project}",
             "--filter", "label=com.docker.compose.oneoff=False"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if listed.returncode != 0:
            raise LabError(
                f"docker failed to list the lab's containers: {listed.stderr.strip()}",
                "`labctl doctor` checks the engine",
            )
        ids = listed.stdout.split()
        found = (
            subprocess.run([*call, "inspect", *ids], capture_output=True, text=True, timeout=30, check=False)
            if ids
            else None
        )
        out: dict[str, Box] = {}
        # A container removed between the two calls is missing from inspect's list, not an error.
        for doc in json.loads(found.stdout or "[]") if found else []:
            service = (doc.get("Config", {}).get("Labels") or {}).get("com.docker.compose.service")
            if service:
                out[service] = Box.of(doc)
        self._listed = out
        return out

    def is_running(self, service: str) -> bool:
        ok, _ = self.engine()
        if not ok:
            return False
        container = self._containers().get(service)
        return bool(container is not None and container.running)

    def status(self) -> list[ServiceStatus]:
        ok, why = self.engine()
        stage = self.stage_services()
        containers = self._containers() if ok else {}
        # "starting" until the image's first healthcheck (one interval after the start), or no
        # healthcheck at all: the same endpoint, asked now, says more. All asked at once.
        to_ask = [
            s
            for s, c in containers.items()
            if s in self.model.services and c.status == "running" and c.health in ("", "starting")
        ]
        answered = self.probe_all(to_ask)
        rows = []
        for service in self.model.ordered(
            [s for s in self.model.services if self.name in self.model.service(s).runtimes]
        ):
            container = containers.get(service)
            if container is None and service not in stage:
                continue
            svc = self.model.service(service)
            unavailable = self.lab.settings.get("unavailable") or {}
            if container is None and service in unavailable:
                state, health, detail = "not available", "-", unavailable[service]
            elif container is None:
                state, health, detail = "stopped", "-", "" if ok else why
            else:
                state = "frozen" if container.paused else container.status
                if service in answered:
                    health = "healthy" if answered[service] else "unhealthy"
                else:
                    health = container.health
                if state != "running":
                    health = "-"
                detail = "" if service in stage else f"not part of {self.lab.stage}"
            rows.append(
                ServiceStatus(service, svc.layer, state, health, self.service_url(service), None, detail)
            )
        return rows

    def logs(self, service: str, follow: bool = False, lines: int = 200) -> None:
        if service == "proxy-build":
            if not self.build_log.exists():
                raise LabError("no proxy image was built for this lab", "`labctl up module-1` builds it")
            sys.stdout.write(
                "\n".join(self.build_log.read_text(errors="replace").splitlines()[-lines:]) + "\n"
            )
            return
        self.model.service(service)
        if follow:
            stream = self._compose(
                lambda c: c.compose.logs(service, follow=True, stream=True, tail=str(lines)), "read logs"
            )
            try:
                for _source, chunk in stream:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
            except KeyboardInterrupt:
                return
            return
        sys.stdout.write(self._compose(lambda c: c.compose.logs(service, tail=str(lines)), "read logs"))

    def stop_service(self, service: str) -> None:
        """`docker stop` of its container, as `compose stop <service>` does (without reading every layer
        file first: seconds under load). No container: nothing to stop."""
        self.model.service(service)
        if service in self._containers():
            self._docker(["stop", "-t", "5", container_name(self.lab.instance, service)], f"stop {service}")

    def start_service(self, service: str) -> None:
        self.model.service(service)
        self.lab = self.lab.reload()
        self.prepare_files()
        self._compose(lambda c: c.compose.up([service], detach=True), f"start {service}")
        self._wait_ready([service])
        record_applied(self.lab, self.model, [service])
        if service in ("prometheus", "alertmanager"):
            self.wait_alert_route()

    def start_in_place(self, service: str) -> None:
        """`docker start` of its stopped container, as it is (a process fault's heal: nothing about the
        service changed, so compose would only start it, after reading every layer file). Without a
        container, start_service."""
        self.model.service(service)
        if service not in self._containers():
            self.start_service(service)
            return
        before = self._restart_counts([service])
        self._docker(["start", container_name(self.lab.instance, service)], f"start {service}")
        self._wait_ready([service], restarts_before=before)
        record_applied(self.lab, self.model, [service])
        if service in ("prometheus", "alertmanager"):
            self.wait_alert_route()

    def restart(self, service: str) -> None:
        # Recreate, so changed overrides (command, environment) take effect.
        self.model.service(service)
        self.lab = self.lab.reload()
        self.prepare_files()
        self._compose(
            lambda c: c.compose.up([service], detach=True, force_recreate=True, dependencies=False),
            f"restart {service}",
        )
        self._wait_ready([service])
        record_applied(self.lab, self.model, [service])

    def restart_in_place(self, service: str) -> None:
        """`docker restart`: the same container, command and environment (no recreate, no network
        attach), for a change the service reads from its mounted local files at start. One second to
        stop (the proxy's spool survives a kill), then the engine kills it."""
        self.model.service(service)
        self.lab = self.lab.reload()
        self.prepare_files()
        states = self._inspect_states([service])
        if service not in states:  # no container yet: create it
            self.restart(service)
            return
        before = {service: states[service][1]}
        taken = self._proxy_restarts_itself(before) if service == "proxy" else False
        if not taken:
            # The engine's own restart: compose would read every layer file first (seconds under load).
            # One second to stop a running service, none when nothing runs or a proxy does not answer
            # (between or during failed starts, where its PID 1 ignores SIGTERM: the second is waited out).
            wait = "1" if states[service][0] == "running" and taken is False else "0"
            name = container_name(self.lab.instance, service)
            self._docker(["restart", "-t", wait, name], f"restart {service}")
            self._wait_ready([service], restarts_before=before)
        record_applied(self.lab, self.model, [service])

    def _proxy_restarts_itself(self, restarts_before: dict[str, int]) -> bool | None:
        """A running proxy restarts itself (POST /api/restart, asked quietly: its log shows the stop and
        the start, as after `docker restart`): the same process runs its command again in the same
        container, without the engine's stop and start. True once the new process is ready; LabError
        with its last log lines, as for any failed start, when it exits. False when the proxy refused
        the request, None when nothing answered: the caller restarts the container."""
        name = container_name(self.lab.instance, "proxy")
        admin = self.lab.url("proxy", "admin")
        # Started first, so no exit is missed: `docker wait` returns at the container's next exit, also
        # when its restart policy starts it again.
        waiter: subprocess.Popen[str] | None = subprocess.Popen(
            [*clean_call(self.client_call), "wait", name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            asked = time.monotonic()
            took = proxy_local.ask_restart(admin, self.lab.admin_headers(), quiet=True)
            if not took:
                return took
            deadline = asked + self.ready_timeout
            next_look = asked + STATE_EVERY_S
            while time.monotonic() < deadline:
                if waiter is not None and waiter.poll() is not None:
                    exited, waiter = waiter.returncode == 0, None  # a failed `docker wait`: looks below
                    if exited:
                        self._listed = None
                        self._fail_if_exited(["proxy"], restarts_before)
                        raise LabError(
                            "proxy exited while restarting",
                            "`labctl logs proxy` shows why; fix the cause, then `labctl up` again",
                        )
                # The old process answers with its own, longer uptime until it stops.
                if self.probe("proxy", timeout=0.5):
                    up = proxy_local.uptime(admin, self.lab.admin_headers())
                    if up is not None and up <= time.monotonic() - asked + 0.1:  # reported in 0.1 s steps
                        return True
                if time.monotonic() >= next_look:
                    self._fail_if_exited(["proxy"], restarts_before)
                    next_look = time.monotonic() + STATE_EVERY_S
                time.sleep(POLL_S)
            raise LabError(
                f"proxy was not healthy {self.ready_timeout:.0f}s after its restart",
                "read `labctl logs proxy`, fix the cause, then `labctl up` again",
            )
        finally:
            if waiter is not None and waiter.poll() is None:
                waiter.kill()
            if waiter is not None:
                waiter.wait()

    def kill_service(self, service: str, signal: int) -> None:
        """`docker kill --signal` of its running container, as `compose kill <service>` does (without
        reading every layer file first). Not running: nothing to signal."""
        self.model.service(service)
        if self.is_running(service):
            name = container_name(self.lab.instance, service)
            self._docker(["kill", "--signal", str(signal), name], f"signal {service}")

    def _docker(self, args: list[str], what: str) -> str:
        """One engine call on one of the lab's containers (stop, start, restart, kill): its output, or a
        LabError saying what failed."""
        out = subprocess.run(
            [*clean_call(self.client_call), *args], capture_output=True, text=True, timeout=60, check=False
        )
        self._listed = None  # whatever it changed, the next listing asks the engine again
        if out.returncode != 0:
            raise LabError(
                f"docker failed to {what}: {out.stderr.strip()}",
                "`labctl status` and `labctl logs <service>` show what failed; `labctl doctor` checks the engine",
            )
        return out.stdout

    # --- operating a running lab (labctl reload, backup, restore) -----------------------------------------

    def exec_in(self, service: str, argv: list[str], user: str | None = None) -> tuple[int, str]:
        """Run argv inside the service's running container: (exit code, output). The validation tools
        (`otelcol validate`, `promtool check`, the proxy's dry run) run where the service runs."""
        from python_on_whales.exceptions import DockerException

        try:
            out = self.client().compose.execute(service, argv, tty=False, user=user)
        except DockerException as exc:
            return exc.return_code or 1, "\n".join(filter(None, [exc.stdout, exc.stderr])).strip()
        return 0, (out or "").strip()

    def container_id(self, service: str) -> str:
        container = self._containers().get(service)
        if container is None:
            raise LabError(
                f"{service} has no container in this lab", f"start it with `labctl up {self.lab.stage}`"
            )
        return str(container.id)

    def copy_from(self, service: str, path: str, dest: Path) -> None:
        """`docker cp` a path out of the service's container (running or stopped)."""
        cid = self.container_id(service)
        self._compose(lambda c: c.container.copy((cid, path), dest), f"copy {path} out of {service}")

    def copy_to(self, service: str, src: Path, path: str) -> None:
        """`docker cp` a local path into the service's container (running or stopped)."""
        cid = self.container_id(service)
        self._compose(lambda c: c.container.copy(src, (cid, path)), f"copy {src} into {service}")


def resume_stopped(lab: LabState, free_ports: bool) -> None:
    """A new lab in a state dir whose Docker lab was brought down (`down` keeps its stopped containers
    and its env file): take over what they were made with, so `up` starts them instead of recreating
    them. Grafana's admin password (its kept volume holds it) and, with --free-ports, the previous host
    ports when every one of them is still free."""
    env_file = lab.dir / "compose.env"
    try:
        env = read_env_file(env_file) if env_file.is_file() else {}
    except (LabError, OSError):
        return
    if env.get("LAB_INSTANCE") != lab.instance:
        return
    if env.get("LAB_GRAFANA_ADMIN_PASSWORD"):
        lab.settings.setdefault("grafana_admin_password", env["LAB_GRAFANA_ADMIN_PASSWORD"])
    if not free_ports:
        return
    previous = {
        s: {n: env[port_var(s, n)] for n in ports}
        for s, ports in lab.ports.items()
        if ports and all(port_var(s, n) in env for n in ports)
    }
    try:
        ports = {s: {n: int(v) for n, v in named.items()} for s, named in previous.items()}
    except ValueError:
        return
    previous_ports = {p for named in ports.values() for p in named.values()}
    if not ports or any(port_in_use(p) for p in previous_ports):
        return
    # The other services' new free ports were picked while the stopped lab's were free too: one may be
    # among them (the native-only relays have no compose variable). Those get another free port.
    merged = {**lab.ports, **ports}
    used = set(previous_ports)
    for service, named in merged.items():
        if service in ports:
            continue
        for name, port in list(named.items()):
            if port in used:
                named[name] = next(p for p in find_free_ports(len(used) + 1) if p not in used)
            used.add(named[name])
    lab.ports = merged


COMPOSE_HINT = (
    "install the Compose plugin (Docker Desktop has it; Linux: the docker-compose-plugin package), "
    "check with `docker compose version`, then `labctl up` again"
)


def compose_problem(client_call: list[str] | None = None) -> str | None:
    """None when `docker compose version` works; else what is wrong, in one line."""
    try:
        out = subprocess.run(
            [*(client_call or ["docker"]), "compose", "version", "--short"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker compose version` did not run ({exc})"
    if out.returncode != 0:
        said = (out.stderr.strip().splitlines() or ["no output"])[0]
        return f"`docker compose version` failed: {said}"
    return None
