"""OTLP requests shaped like Claude Code's, built with the protobuf classes (no SDK), for exact counts."""

from __future__ import annotations

import time

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

# An hour ago, on a whole second: recent enough for the event store (records older than its retention
# are reported by the contract's timestamp_range rule).
T0 = (time.time_ns() // 10**9 - 3600) * 10**9


def kv(key: str, value: str | float) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


RESOURCE = {
    "service.name": "claude-code",
    "service.version": "2.0.0",
    "os.type": "linux",
    "host.arch": "amd64",
}


def token_usage(
    points: int, bad: int = 0, session: str = "s-1", marker: str = "", seq: int = 0, value: float = 10.0
) -> ExportMetricsServiceRequest:
    """`points` good claude_code.token.usage points plus `bad` ones with an invalid `type` value."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    for k, v in RESOURCE.items():
        rm.resource.attributes.append(kv(k, v))
    if marker:
        rm.resource.attributes.append(kv("lab.marker", marker))
    sm = rm.scope_metrics.add()
    sm.scope.name = "com.anthropic.claude_code"
    m = sm.metrics.add()
    m.name = "claude_code.token.usage"
    m.unit = "tokens"
    m.sum.aggregation_temporality = 1
    m.sum.is_monotonic = True
    types = ["input", "output", "cacheRead", "cacheCreation"]
    for i in range(points + bad):
        p = m.sum.data_points.add()
        p.as_double = value
        p.start_time_unix_nano = T0 + seq * 1000
        p.time_unix_nano = T0 + (seq + 1) * 1000  # contiguous deltas, as an SDK sends them
        attrs = {
            "session.id": session,
            "user.account_uuid": "u-1",
            "organization.id": "o-1",
            "terminal.type": "tmux",
            "model": "claude-sonnet-4-5",
            "query_source": "main",
            "type": types[i % 4] if i < points else "bogus-type",
        }
        for k, v in attrs.items():
            p.attributes.append(kv(k, v))
    return req


def one_point_metrics(metrics: int, session: str = "s-1") -> ExportMetricsServiceRequest:
    """`metrics` claude_code.token.usage metrics of one point each: the shape of a load generator such as
    the Collector project's telemetrygen (one metric per point), where the per-metric cost shows."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    for k, v in RESOURCE.items():
        rm.resource.attributes.append(kv(k, v))
    sm = rm.scope_metrics.add()
    sm.scope.name = "com.anthropic.claude_code"
    types = ["input", "output", "cacheRead", "cacheCreation"]
    for i in range(metrics):
        m = sm.metrics.add()
        m.name = "claude_code.token.usage"
        m.unit = "tokens"
        m.sum.aggregation_temporality = 1
        m.sum.is_monotonic = True
        p = m.sum.data_points.add()
        p.as_double = 10.0
        p.start_time_unix_nano = T0
        p.time_unix_nano = T0 + 1000
        attrs = {
            "session.id": f"{session}-{i // 4 % 25}",
            "user.account_uuid": "u-1",
            "organization.id": "o-1",
            "terminal.type": "tmux",
            "model": "claude-sonnet-4-5",
            "query_source": "main",
            "type": types[i % 4],
        }
        for k, v in attrs.items():
            p.attributes.append(kv(k, v))
    return req


def events(n: int, marker: str = "") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    for k, v in RESOURCE.items():
        rl.resource.attributes.append(kv(k, v))
    sl = rl.scope_logs.add()
    sl.scope.name = "com.anthropic.claude_code.events"
    for i in range(n):
        r = sl.log_records.add()
        r.time_unix_nano = T0 + i
        r.body.string_value = "claude_code.api_request"
        for k, v in {
            "event.name": "api_request",
            "event.timestamp": "2026-11-27T10:00:00.000Z",
            "event.sequence": i,
            "session.id": "s-1",
            "model": "claude-sonnet-4-5",
            "cost_usd": 0.01,
            "duration_ms": 1200,
            "input_tokens": 100,
            "output_tokens": 50,
            "cache_read_tokens": 0,
            "cache_creation_tokens": 0,
            "lab.marker": marker,
        }.items():
            r.attributes.append(kv(k, v))
    return req


def spans(n: int) -> ExportTraceServiceRequest:
    """n root interaction spans, as Claude Code sends them with traces on (they conform to the contract)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "claude-code"))
    ss = rs.scope_spans.add()
    for i in range(n):
        s = ss.spans.add()
        s.name = "claude_code.interaction"
        s.kind = 1  # SPAN_KIND_INTERNAL
        s.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
        s.span_id = (i + 1).to_bytes(8, "big")
        s.start_time_unix_nano = T0
        s.end_time_unix_nano = T0 + 1000
        s.attributes.append(kv("span.type", "interaction"))
        s.attributes.append(kv("gen_ai.conversation.id", "s-1"))
    return req
