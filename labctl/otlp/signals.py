"""The three OTLP signals: their protobuf types, service names, paths and how to count their items."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def _count_points(req: Any) -> int:
    # One pass over metrics, not points: len() of a repeated field is O(1) in upb.
    n = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is not None:
                    n += len(getattr(m, kind).data_points)
    return n


def _count_logs(req: Any) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def _count_spans(req: Any) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


@dataclass(frozen=True)
class Signal:
    name: str  # "metrics" | "logs" | "traces"
    request_type: type[Message]
    response_type: type[Any]
    grpc_service: str  # fully qualified service name
    http_path: str
    rejected_field: str  # field of the partial_success message
    item_noun: str  # what one item is called, for messages
    count: Callable[[Any], int]

    @property
    def grpc_method(self) -> str:
        return f"/{self.grpc_service}/Export"


SIGNALS: dict[str, Signal] = {
    "metrics": Signal(
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        "/v1/metrics",
        "rejected_data_points",
        "data points",
        _count_points,
    ),
    "logs": Signal(
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
        "opentelemetry.proto.collector.logs.v1.LogsService",
        "/v1/logs",
        "rejected_log_records",
        "log records",
        _count_logs,
    ),
    "traces": Signal(
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
        "opentelemetry.proto.collector.trace.v1.TraceService",
        "/v1/traces",
        "rejected_spans",
        "spans",
        _count_spans,
    ),
}


def response(signal: Signal, rejected: int = 0, message: str = "") -> Any:
    """An Export*ServiceResponse: empty on full success, partial_success when something was rejected or warned."""
    resp = signal.response_type()
    if rejected or message:
        ps = resp.partial_success
        setattr(ps, signal.rejected_field, rejected)
        ps.error_message = message
    return resp
