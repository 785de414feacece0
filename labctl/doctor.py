"""Preflight checks for `labctl doctor`: engine, ports, binaries, disk, memory — each with its fix."""

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
        f"{why}: the lab runs natively",
        "nothing needed for native; for docker start Docker Engine / Docker Desktop",
    )


def _ports(model: LabModel) -> list[Finding]:
    # Ports of a running lab belong to it; check the ports the next `up` would use otherwise.
    ours: set[int] = set()
    ports = model.default_ports()
    if LabState.exists():
        lab = LabState.load()
        ports = lab.ports or ports
        # A docker lab does not use the native-only ports (the scrape and query relays').
        ports = {s: p for s, p in ports.items() if s not in model.services or lab.runtime in model.service(s).runtimes}
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
        out.append(Finding("ports", "ok", f"all {sum(len(p) for p in ports.values())} lab ports are free (or ours)"))
    return out


def _binaries(model: LabModel) -> list[Finding]:
    from labctl.install import resolve_binary

    out = []
    for name in ("otelcol-lab", "prometheus", "promtool", "grafana"):
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
    return out


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


def run_checks(model: LabModel) -> list[Finding]:
    return [_engine(), *_ports(model), *_binaries(model), *_resources()]
