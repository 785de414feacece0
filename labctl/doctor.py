"""Preflight checks for `labctl doctor`: engine, ports, binaries, disk, memory — each with its fix.

What is checked follows the runtime the lab uses (or `--runtime`): Docker's engine, compose plugin and
images for a docker lab, the native binaries for a native one.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from labctl import state
from labctl.errors import LabError
from labctl.model import LabModel
from labctl.runtimes.base import docker_engine
from labctl.runtimes.ports import port_in_use, port_owner
from labctl.state import LabState

MIN_DISK_BYTES = 1 << 30  # Prometheus's TSDB, logs and the Collector build cache
MIN_MEMORY_BYTES = 1 << 30  # the lab idles well under 500 MB; leave room for the student's tools


@dataclass
class Finding:
    name: str
    level: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def level_text(self) -> str:
        return {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}[self.level]


def _engine() -> Finding:
    ok, why = docker_engine()
    if ok:
        return Finding("docker engine", "ok", f"Docker {why}: `--runtime auto` uses docker")
    return Finding(
        "docker engine",
        "warn",
        f"the lab runs natively ({why})",
        "nothing needed for the native runtime; for Docker, start Docker Engine or Docker Desktop",
    )


def _docker(model: LabModel, required: bool) -> list[Finding]:
    """Engine, compose plugin, every image the lab needs, and whether the proxy image can be built."""
    from labctl.runtimes import docker_images
    from labctl.runtimes.docker import COMPOSE_HINT, compose_problem

    ok, why = docker_engine()
    if not ok:
        return [
            Finding(
                "docker engine",
                "fail" if required else "warn",
                f"the lab runs natively ({why})",
                "start Docker Engine or Docker Desktop"
                + ("" if required else " (nothing needed for the native runtime)"),
            )
        ]
    out = [Finding("docker engine", "ok", f"Docker {why}")]
    problem = compose_problem()
    if problem:
        out.append(Finding("docker compose", "fail" if required else "warn", problem, COMPOSE_HINT))
        return out
    out.append(Finding("docker compose", "ok", "`docker compose version` works"))
    recorded = LabState.load().settings.get("images") if LabState.exists() else None
    images = docker_images.chosen_images(model, recorded)
    for role, ref in images.items():
        if docker_images.image_id(ref):
            out.append(Finding(f"image {role}", "ok", ref))
            continue
        need = "module-4 needs it" if role == "grafana" else "`labctl up` pulls it (needs a registry)"
        out.append(Finding(f"image {role}", "warn", f"{ref} is not here: {need}", docker_images.GET_IMAGES))
    out.append(_proxy_image(model, images["python"]))
    return out


def _proxy_image(model: LabModel, python_ref: str) -> Finding:
    from labctl.runtimes import docker_images

    python_id = docker_images.image_id(python_ref)
    if python_id is None:
        return Finding(
            "proxy image",
            "warn",
            f"cannot be built yet: its base image {python_ref} is missing",
            docker_images.GET_IMAGES,
        )
    tag = docker_images.proxy_tag(model, python_ref, python_id)
    if docker_images.image_id(tag):
        return Finding("proxy image", "ok", f"{tag} is built for this code")
    try:
        version, machine = docker_images.image_python(python_ref)
    except LabError as exc:
        return Finding("proxy image", "fail", exc.message, exc.hint or "")
    if docker_images.wheelhouse_current(model, version, machine):
        return Finding(
            "proxy image", "ok", f"buildable offline: wheelhouse ready for Python {version} {machine}"
        )
    return Finding(
        "proxy image",
        "warn",
        f"no wheelhouse for Python {version} {machine} yet: the first `up` "
        "downloads the proxy's dependencies (needs the package index)",
        "before class, with network: `labctl images wheelhouse`",
    )


def _ports(model: LabModel, runtime: str, port_offset: int = 0) -> list[Finding]:
    # Ports of a running lab belong to it; check the ports the next `up` would use otherwise.
    ours: set[int] = set()
    ports = {s: {n: p + port_offset for n, p in named.items()} for s, named in model.default_ports().items()}
    ports = {
        s: p for s, p in ports.items() if s not in model.services or runtime in model.service(s).runtimes
    }
    if LabState.exists() and not port_offset:
        lab = LabState.load()
        ports = lab.ports or ports
        # A docker lab does not use the native-only ports (the scrape and query relays').
        ports = {
            s: p
            for s, p in ports.items()
            if s not in model.services or lab.runtime in model.service(s).runtimes
        }
        from labctl.runtimes.base import get_runtime

        ours = {
            lab.port(r.service, p)
            for r in get_runtime(lab, model).status()
            if r.state in ("running", "frozen")
            for p in lab.ports.get(r.service, {})
        }
    out = []
    for service, named in ports.items():
        for name, port in named.items():
            if port in ours or not port_in_use(port):
                continue
            owner = port_owner(port)
            out.append(
                Finding(
                    f"port {port}",
                    "fail",
                    f"{service}.{name} port {port} is in use" + (f" by {owner}" if owner else ""),
                    "stop that process, or `labctl up <module> --port-offset 100` (or --free-ports)",
                )
            )
    if not out:
        out.append(
            Finding("ports", "ok", f"all {sum(len(p) for p in ports.values())} lab ports are free (or ours)")
        )
    return out


def _binaries(model: LabModel) -> list[Finding]:
    from labctl.install import resolve_binary

    out = []
    for name in (
        "otelcol-lab",
        "prometheus",
        "promtool",
        "alertmanager",
        "victoria-logs",
        "jaeger",
        "grafana",
    ):
        try:
            out.append(Finding(f"binary {name}", "ok", str(resolve_binary(name))))
        except LabError as exc:
            optional = name == "grafana"
            out.append(
                Finding(
                    f"binary {name}",
                    "warn" if optional else "fail",
                    exc.message + (" — native module-4 runs without Grafana" if optional else ""),
                    exc.hint or "",
                )
            )
    if not shutil.which("go"):
        out.append(Finding("go toolchain", "warn", "go is not on PATH", "install Go to build the Collector"))
    out.append(_grpc_front())
    return out


def _grpc_front() -> Finding:
    """Which front will take the proxy's OTLP/gRPC calls (both work; the Go one costs less CPU)."""
    from labctl.proxy.grpc_front import go_front

    try:
        path = go_front()
    except LabError as exc:
        return Finding("proxy gRPC front", "fail", exc.message, exc.hint or "")
    if path is not None:
        return Finding("proxy gRPC front", "ok", f"the Go front, {path}")
    return Finding(
        "proxy gRPC front",
        "ok",
        "the Python front (grpc.aio)",
        "optional: `labctl install grpc-front` builds the Go front, several times cheaper per call",
    )


def _resources() -> list[Finding]:
    out = []
    where = state.state_dir()
    probe = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    out.append(
        Finding(
            "disk",
            "ok" if free >= MIN_DISK_BYTES else "fail",
            f"{free / 2**30:.1f} GiB free at {probe}",
            "" if free >= MIN_DISK_BYTES else "free at least 1 GiB, or use --state-dir on another disk",
        )
    )
    avail = psutil.virtual_memory().available
    out.append(
        Finding(
            "memory",
            "ok" if avail >= MIN_MEMORY_BYTES else "warn",
            f"{avail / 2**30:.1f} GiB available",
            "" if avail >= MIN_MEMORY_BYTES else "close other programs: the lab needs about 500 MB",
        )
    )
    return out


def chosen_runtime(requested: str | None) -> tuple[str, bool]:
    """(runtime to check for, whether it was asked for explicitly): --runtime, else the lab's, else auto."""
    if requested in ("docker", "native"):
        return requested, True
    if requested not in (None, "auto"):
        raise LabError(f"unknown runtime {requested!r}", "use docker, native or auto")
    if LabState.exists():
        return LabState.load().runtime, True
    explicit = state.requested_runtime()
    if explicit in ("docker", "native"):
        return explicit, True
    return ("docker" if docker_engine()[0] else "native"), False


def run_checks(model: LabModel, runtime: str | None = None, port_offset: int = 0) -> list[Finding]:
    chosen, explicit = chosen_runtime(runtime)
    if chosen == "docker":
        return [*_docker(model, explicit), *_ports(model, chosen, port_offset), *_resources()]
    return [_engine(), *_ports(model, chosen, port_offset), *_binaries(model), *_resources()]


def print_findings(results: list[Finding]) -> None:
    """One entry per check: `check  result  detail`, the detail wrapped under itself and the fix on a line
    of its own below. A table would squeeze its columns to fit 80 columns; image references are long
    words that must stay whole (students copy them), so a detail with a word longer than its column goes,
    whole, on the lines below the check instead, from a smaller indent."""
    from labctl import ui

    name_w = max((len(r.name) for r in results), default=0)
    pad = 2 + name_w + 2 + 4 + 2  # "  name  result  "
    width = ui.width()
    for r in results:
        head = f"  {r.name:<{name_w}}  {r.level_text()}{' ' * (4 - len(r.level))}  "
        lines = ui.wrap(r.detail, width, pad)
        if any(len(line) > width - pad for line in lines):  # a word too long for the detail column
            ui.console.print(head.rstrip(), soft_wrap=True)
            for line in ui.wrap(r.detail, width, 6):
                ui.console.print(" " * 6 + ui.escape(line), soft_wrap=True)
        else:
            for i, line in enumerate(lines):
                ui.console.print((head if i == 0 else " " * pad) + ui.escape(line), soft_wrap=True)
        if r.fix:
            ui.item("fix:", r.fix, 4, indent=6)
