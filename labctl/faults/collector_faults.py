"""Faults inside the Collector, through a configuration overlay (collector-configs/faults/*.yaml).

  memory-pressure    memory_limiter far below the Collector's own heap: every export is refused
  delta-temporality  no delta_to_cumulative: a delta series that skips an interval is undercounted
  series-expiry      the prometheus exporter forgets series before Prometheus scrapes them
  no-logs-pipeline   no logs pipeline: the OTLP receiver does not take events, the proxy drops them
  per-request-label  span metrics with a request id as a label: series multiply with every request

The overlay goes in through the runtime's overrides, like `auth`, so it works the same in both runtimes:
written into the Collector's local slot and reloaded by SIGHUP in the same process or container
(labctl/runtimes/collector_slot.py). Proven from outside, e.g. a one-point export is refused.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labctl.errors import LabError
from labctl.faults.base import FaultContext, wait_until
from labctl.faults.records import ConfigOverlay
from labctl.lazy import requests

if TYPE_CHECKING:  # grpc is imported where a probe runs: every `break`, `heal` and `faults` loads this module
    import grpc


def _overlay(ctx: FaultContext, name: str) -> Any:
    return ctx.model.root / "collector-configs" / "faults" / f"{name}.yaml"


def one_point_export(target: str, timeout: float = 3.0) -> tuple[grpc.StatusCode, str]:
    """Export one gauge point (named lab_probe, so it is recognisable) and return the receiver's answer."""
    import grpc
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


def apply_memory(ctx: FaultContext, opts: dict[str, Any]) -> ConfigOverlay:
    if not ctx.runtime.is_running("collector"):
        raise LabError("the Collector is not running: nothing to put under pressure", "`labctl status`")
    undo = ctx.add_overrides("collector", configs=[_overlay(ctx, "memory-pressure")])
    return ConfigOverlay(service="collector", undo=undo)


def verify_memory(ctx: FaultContext, rec: ConfigOverlay) -> list[str]:
    target = ctx.lab.addr("collector", "otlp_grpc")
    seen: dict[str, Any] = {}

    def refused() -> bool:
        seen["code"], seen["details"] = one_point_export(target)
        return seen["code"].name != "OK" and "refused" in str(seen["details"]).lower()

    # memory_limiter checks the heap every second after start: the first check turns refusing on.
    if not wait_until("collector refuses", refused, timeout=15, interval=0.5):
        raise LabError(
            f"the Collector at {target} still accepts data ({seen.get('code')}: {seen.get('details')})",
            f"see {ctx.lab.log_path('collector')}",
        )
    return [f"Collector {target}: a one-point export → {seen['code'].name}: {str(seen['details'])[:120]}"]


def heal_overlay(ctx: FaultContext, rec: ConfigOverlay) -> None:
    ctx.remove_overrides(rec.undo)
    if not wait_until("collector healthy", lambda: ctx.runtime.probe("collector", timeout=0.5), timeout=20):
        raise LabError(
            "the Collector did not come back after healing", f"see {ctx.lab.log_path('collector')}"
        )
    target = ctx.lab.addr("collector", "otlp_grpc")
    code: list[Any] = [None]

    def accepts() -> bool:
        code[0] = one_point_export(target)
        return bool(code[0][0].name == "OK")

    if not wait_until("collector accepts", accepts, timeout=10, interval=0.3):
        raise LabError(
            f"the Collector still refuses data after healing ({code[0]})",
            f"see {ctx.lab.log_path('collector')}",
        )


# --- the classic configuration traps --------------------------------------------------------------


def _apply_overlay(ctx: FaultContext, configs: list[Path], scratch: Path | None = None) -> ConfigOverlay:
    if not ctx.runtime.is_running("collector"):
        raise LabError("the Collector is not running: nothing to reconfigure", "`labctl status`")
    undo = ctx.add_overrides("collector", configs=configs)
    return ConfigOverlay(service="collector", undo=undo, scratch=str(scratch) if scratch else None)


def apply_delta(ctx: FaultContext, opts: dict[str, Any]) -> ConfigOverlay:
    return _apply_overlay(ctx, [_overlay(ctx, "delta-temporality")])


def apply_expiry(ctx: FaultContext, opts: dict[str, Any]) -> ConfigOverlay:
    return _apply_overlay(ctx, [_overlay(ctx, "series-expiry")])


def apply_no_logs(ctx: FaultContext, opts: dict[str, Any]) -> ConfigOverlay:
    """The Collector's own pipelines without `logs`. A later config file cannot take a key away, only
    replace it: the first file empties `service::pipelines`, the second puts back every pipeline of
    base.yaml but logs (read from base.yaml, so the two never drift apart)."""

    def write(folder: Path, keep: bool) -> ConfigOverlay:
        files = write_no_logs_overlay(ctx.model.root / "collector-configs" / "base.yaml", folder)
        return _apply_overlay(ctx, files, scratch=folder if keep else None)

    if ctx.quiet:  # hidden: only the neutral copies add_overrides makes may stay behind
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            return write(Path(scratch), keep=False)
    return write(ctx.fault_dir("no-logs-pipeline"), keep=True)


def write_no_logs_overlay(base: Path, folder: Path) -> list[Path]:
    """The two overlay files (in `folder`) that take base.yaml's logs pipelines away."""
    pipelines = _without_logs(yaml.safe_load(base.read_text())["service"]["pipelines"])
    first, second = folder / "1-clear.yaml", folder / "2-pipelines.yaml"
    first.write_text(yaml.safe_dump({"service": {"pipelines": None}}))
    second.write_text(yaml.safe_dump({"service": {"pipelines": pipelines}}, sort_keys=False))
    return [first, second]


def _without_logs(pipelines: dict[str, Any]) -> dict[str, Any]:
    """Every pipeline but the logs ones. A connector those fed (count/events: events counted into metrics)
    leaves the receivers of the rest too: a connector that receives but is never exported to is a
    config error, and no events means nothing to count."""
    kept = {k: dict(v) for k, v in pipelines.items() if not k.startswith("logs")}

    def exporters(body: dict[str, Any]) -> set[str]:
        listed = body.get("exporters")  # `${env:…}` in base.yaml's own logs pipeline: not a connector
        return set(listed) if isinstance(listed, list) else set()

    fed = {e for k, v in pipelines.items() if k.startswith("logs") for e in exporters(v)}
    fed -= {e for v in kept.values() for e in exporters(v)}
    for body in kept.values():
        body["receivers"] = [r for r in body.get("receivers") or [] if r not in fed]
    return {k: v for k, v in kept.items() if v["receivers"]}


def apply_request_label(ctx: FaultContext, opts: dict[str, Any]) -> ConfigOverlay:
    return _apply_overlay(ctx, [_overlay(ctx, "per-request-label")])


def verify_request_label(ctx: FaultContext, rec: ConfigOverlay) -> list[str]:
    """Two model-request spans with ids of their own straight to the Collector: both ids must become
    label values on its exporter (the connector flushes every second)."""
    import grpc

    from labctl.checks import exposition, series_growth

    ids = {f"req_probe{_probe_id()}" for _ in range(2)}
    target = ctx.lab.addr("collector", "otlp_grpc")
    code, details = _export(target, _spans_request(ids))
    if code != grpc.StatusCode.OK:
        raise LabError(f"the Collector at {target} refused a probe export ({code.name}: {details})")
    seen: dict[str, series_growth.IdLabels] = {}

    def labelled() -> bool:
        reply = requests.get(ctx.lab.url("collector", "prom_exporter") + "/metrics", timeout=2)
        seen["ids"] = series_growth.id_labels(exposition.parse(reply.text), ids)
        return seen["ids"].ids_seen == ids

    if not wait_until("request ids as labels", labelled, timeout=8, interval=0.3):
        raise LabError("the Collector's exporter shows no series per request id", "see its /metrics")
    return [f"Collector {target}: 2 request spans → {seen['ids'].series} new series on its exporter"]


def _spans_request(request_ids: set[str]) -> Any:
    """One model-request span per id, shaped like Claude Code's claude_code.llm_request."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attr = resource_spans.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "claude-code"
    spans = resource_spans.scope_spans.add().spans
    now = time.time_ns()
    for rid in sorted(request_ids):
        span = spans.add()
        span.trace_id, span.span_id = secrets.token_bytes(16), secrets.token_bytes(8)
        span.name = "claude_code.llm_request"
        span.start_time_unix_nano, span.end_time_unix_nano = now - 50_000_000, now
        for key, value in (("request_id", rid), ("gen_ai.request.model", "lab-probe")):
            a = span.attributes.add()
            a.key, a.value.string_value = key, value
    return request


def _probe_id() -> str:
    return secrets.token_hex(4)


def _export(target: str, request: Any, timeout: float = 3.0) -> tuple[grpc.StatusCode, str]:
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            if isinstance(request, logs_service_pb2.ExportLogsServiceRequest):
                logs_service_pb2_grpc.LogsServiceStub(channel).Export(request, timeout=timeout)
            elif isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=timeout)
            else:
                metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(request, timeout=timeout)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _delta_request(probe: str, value: int, start_ns: int, time_ns: int) -> Any:
    """One point of the monotonic DELTA sum `lab_probe_delta` for the stream probe=<probe>."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    request = metrics_service_pb2.ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "lab_probe_delta"
    metric.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    metric.sum.is_monotonic = True
    point = metric.sum.data_points.add()
    point.as_int, point.start_time_unix_nano, point.time_unix_nano = value, start_ns, time_ns
    attr = point.attributes.add()
    attr.key, attr.value.string_value = "probe", probe
    return request


def exporter_value(ctx: FaultContext, metric: str, probe: str) -> float | None:
    """The value of `metric{probe="<probe>"}` on the Collector's prometheus exporter, None when absent."""
    from labctl.checks import exposition

    reply = requests.get(ctx.lab.url("collector", "prom_exporter") + "/metrics", timeout=2)
    return exposition.total(exposition.parse(reply.text), metric, probe=probe)


def sparse_delta_total(ctx: FaultContext, probe: str) -> tuple[float | None, int]:
    """Two delta points of one stream with a gap between them (the second starts after the first ended,
    as an SDK reports a series that skipped an interval): returns (the exporter's total, the true sum)."""
    target = ctx.lab.addr("collector", "otlp_grpc")
    now = time.time_ns()
    second = 1_000_000_000
    for value, start, end in ((5, now - 40 * second, now - 30 * second), (3, now - 20 * second, now)):
        code, details = _export(target, _delta_request(probe, value, start, end))
        if code.name != "OK":
            raise LabError(f"the Collector at {target} refused a probe export ({code.name}: {details})")
    seen: dict[str, float | None] = {}

    def settled() -> bool:
        seen["v"] = exporter_value(ctx, "lab_probe_delta_total", probe)
        return seen["v"] is not None and seen["v"] in (3, 8)

    wait_until("probe exported", settled, timeout=6, interval=0.3)
    return seen.get("v"), 8


def verify_delta(ctx: FaultContext, rec: ConfigOverlay) -> list[str]:
    total, _ = sparse_delta_total(ctx, _probe_id())
    if total != 3:
        raise LabError(
            f"the Collector still sums sparse delta points (exporter shows {total}, sent 5 + 3)",
            f"see {ctx.lab.log_path('collector')}",
        )
    return [f"two delta points 5 and 3 of one stream, a gap between them: the exporter shows {total:g}"]


def _sent_to_exporter(ctx: FaultContext) -> float | None:
    """Metric points the Collector's prometheus exporter took since its (re)load, from its own metrics
    (0 until it took any); None when those do not answer."""
    from labctl.checks import exposition

    try:
        reply = requests.get(ctx.lab.url("collector", "internal") + "/metrics", timeout=2)
    except requests.RequestException:
        return None
    if not reply.ok:
        return None
    sent = r"otelcol_exporter_sent_metric_points(_total)?"
    return exposition.total(exposition.parse(reply.text), sent, exporter="prometheus") or 0.0


def verify_expiry(ctx: FaultContext, rec: ConfigOverlay) -> list[str]:
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    probe = _probe_id()
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "lab_probe"
    point = metric.gauge.data_points.add()
    point.as_int, point.time_unix_nano = 1, time.time_ns()
    attr = point.attributes.add()
    attr.key, attr.value.string_value = "probe", probe
    target = ctx.lab.addr("collector", "otlp_grpc")
    code, details = _export(target, request)
    if code.name != "OK":
        raise LabError(f"the Collector at {target} refused a probe export ({code.name}: {details})")
    # The batch processor holds the point for up to 1 s, then the exporter takes it: its sent counter,
    # read once the export was accepted, moves when it did (a healthy exporter then keeps the series
    # for hours). Without the Collector's own metrics, a fixed wait as long as any batch takes; a
    # counter that does not move at all (10 s) leaves the point as much time as that.
    before = _sent_to_exporter(ctx)
    if before is None:
        time.sleep(3)
    else:
        wait_until("probe taken", lambda: (_sent_to_exporter(ctx) or 0) > before, timeout=10, interval=0.1)

    def kept() -> bool:
        # A scrape that runs while the batch lands can list the point once, even at 1 ms expiry (the
        # exporter reads its series while they are stored): a kept series is still there a moment later.
        if exporter_value(ctx, "lab_probe", probe) is None:
            return False
        time.sleep(0.3)
        return exporter_value(ctx, "lab_probe", probe) is not None

    if kept():
        raise LabError("the Collector's exporter still shows a fresh series", "see its /metrics")
    return [f"Collector {target}: its exporter took a one-point export; its /metrics never shows it"]


def verify_no_logs(ctx: FaultContext, rec: ConfigOverlay) -> list[str]:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    request = logs_service_pb2.ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "lab probe"
    target = ctx.lab.addr("collector", "otlp_grpc")
    code, details = _export(target, request)
    if code.name == "OK":
        raise LabError("the Collector still takes log records", f"see {ctx.lab.log_path('collector')}")
    return [f"Collector {target}: a one-record logs export → {code.name}: {details[:100]}"]


def heal_no_logs(ctx: FaultContext, rec: ConfigOverlay) -> None:
    heal_overlay(ctx, rec)
    rec.remove_scratch()
