"""`collector-crash` (the Collector dies: SIGKILL, no goodbye) and `storage-down` (Prometheus stopped)."""

from __future__ import annotations

import signal
from typing import Any

from labctl.errors import LabError
from labctl.faults.base import FaultContext, Option, wait_until
from labctl.faults.records import ProcessFault

CRASH_OPTIONS = (Option("signal", "how it dies", choices=("KILL", "TERM", "SEGV"), default="KILL"),)


def _needs(ctx: FaultContext, service: str) -> None:
    if service not in ctx.running:
        raise LabError(f"{service} is not part of {ctx.lab.stage}", "start a module that runs it first")
    if not ctx.runtime.is_running(service):
        raise LabError(f"{service} is not running already: nothing to break", "`labctl status` shows why")


def apply_crash(ctx: FaultContext, opts: dict[str, Any]) -> ProcessFault:
    _needs(ctx, "collector")
    sig = getattr(signal, f"SIG{opts['signal']}")
    ctx.runtime.kill_service("collector", int(sig))
    return ProcessFault(service="collector", signal=str(opts["signal"]))


def apply_storage_down(ctx: FaultContext, opts: dict[str, Any]) -> ProcessFault:
    _needs(ctx, "prometheus")
    ctx.runtime.stop_service("prometheus")
    return ProcessFault(service="prometheus")


def verify_down(ctx: FaultContext, rec: ProcessFault) -> list[str]:
    service = rec.service
    gone = wait_until(f"{service} down", lambda: not ctx.runtime.is_running(service), timeout=5)
    if not gone or ctx.runtime.probe(service, timeout=0.5):
        raise LabError(f"{service} is still running after the fault")
    svc = ctx.model.service(service)
    url = ctx.lab.url(service, svc.health.port) + svc.health.path
    how = f" (SIG{rec.signal})" if rec.signal else ""
    return [f"{service} process is gone{how}", f"{url} does not answer"]


def heal_start(ctx: FaultContext, rec: ProcessFault) -> None:
    service = rec.service
    if not ctx.runtime.is_running(service):
        ctx.runtime.start_in_place(service)  # the fault only stopped it
    if not wait_until(f"{service} healthy", lambda: ctx.runtime.probe(service, timeout=0.5), timeout=20):
        raise LabError(f"{service} did not become healthy again", f"see {ctx.lab.log_path(service)}")
