"""Faults inside the Collector, through a configuration overlay (collector-configs/faults/*.yaml).

  memory-pressure  memory_limiter far below the Collector's own heap: every export is refused

The overlay goes in through the runtime's overrides (extra config files, a restart), like `auth`, so it
works the same in both runtimes. Proven from outside: a one-point export to the Collector is refused.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from labctl.errors import LabError
from labctl.faults.base import FaultContext, wait_until


def _overlay(ctx: FaultContext, name: str) -> Any:
    return ctx.model.root / "collector-configs" / "faults" / f"{name}.yaml"


def one_point_export(target: str, timeout: float = 3.0) -> tuple[grpc.StatusCode, str]:
    """Export one gauge point (named lab_probe, so it is recognisable) and return the receiver's answer."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

    request = metrics_service_pb2.ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "lab_probe"
    point = metric.gauge.data_points.add()
    point.as_int, point.time_unix_nano = 1, time.time_ns()
    with grpc.insecure_channel(target) as channel:
        try:
            metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(request, timeout=timeout)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def apply_memory(ctx: FaultContext, opts: dict[str, Any]) -> dict[str, Any]:
    if not ctx.runtime.is_running("collector"):
        raise LabError("the Collector is not running: nothing to put under pressure", "`labctl status`")
    undo = ctx.add_overrides("collector", configs=[_overlay(ctx, "memory-pressure")])
    return {"service": "collector", "undo": undo}


def verify_memory(ctx: FaultContext, rec: dict[str, Any]) -> list[str]:
    target = ctx.lab.addr("collector", "otlp_grpc")
    seen: dict[str, Any] = {}

    def refused() -> bool:
        seen["code"], seen["details"] = one_point_export(target)
        return seen["code"] != grpc.StatusCode.OK and "refused" in str(seen["details"]).lower()

    # memory_limiter checks the heap every second after start: the first check turns refusing on.
    if not wait_until("collector refuses", refused, timeout=15, interval=0.5):
        raise LabError(
            f"the Collector at {target} still accepts data ({seen.get('code')}: {seen.get('details')})",
            f"see {ctx.lab.log_path('collector')}",
        )
    return [f"Collector {target}: a one-point export → {seen['code'].name}: {str(seen['details'])[:120]}"]


def heal_overlay(ctx: FaultContext, rec: dict[str, Any]) -> None:
    ctx.remove_overrides(rec["undo"])
    if not wait_until("collector healthy", lambda: ctx.runtime.probe("collector", timeout=0.5), timeout=20):
        raise LabError(
            "the Collector did not come back after healing", f"see {ctx.lab.log_path('collector')}"
        )
    target = ctx.lab.addr("collector", "otlp_grpc")
    code: list[Any] = [None]

    def accepts() -> bool:
        code[0] = one_point_export(target)
        return bool(code[0][0] == grpc.StatusCode.OK)

    if not wait_until("collector accepts", accepts, timeout=10, interval=0.3):
        raise LabError(
            f"the Collector still refuses data after healing ({code[0]})",
            f"see {ctx.lab.log_path('collector')}",
        )
