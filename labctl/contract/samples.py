"""Build OTLP requests shaped like Claude Code's, for `labctl contract sample`, examples and tests.

These are real protobuf messages (the same types the SDKs send); nothing here imitates a server.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, NumberDataPoint

DEFAULT_RESOURCE = {
    "service.name": "claude-code",
    "service.version": "2.0.0",
    "os.type": "linux",
    "host.arch": "x64",
}


def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(x) for x in v)
        return out
    return AnyValue(string_value=str(v))


def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


@dataclass
class Point:
    """One counter data point of a metric."""

    metric: str
    value: float | int
    attributes: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None
    temporality: str = "delta"
    start_ns: int | None = None
    time_ns: int | None = None
    monotonic: bool = True
    kind: str = "sum"


_UNITS = {
    "claude_code.cost.usage": "USD",
    "claude_code.token.usage": "tokens",
    "claude_code.active_time.total": "s",
}


def metrics_request(
    points: Iterable[Point], resource: Mapping[str, Any] | None = None
) -> ExportMetricsServiceRequest:
    """One resource, one scope; consecutive points of the same metric share one Metric message."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(key_values(DEFAULT_RESOURCE if resource is None else resource))
    sm = rm.scope_metrics.add()
    sm.scope.name = "com.anthropic.claude_code"
    sm.scope.version = "2.0.0"
    now = time.time_ns()
    current: Metric | None = None
    for p in points:
        unit = p.unit if p.unit is not None else _UNITS.get(p.metric, "")
        if current is None or current.name != p.metric or current.unit != unit:
            current = sm.metrics.add(name=p.metric, unit=unit)
            if p.kind == "sum":
                current.sum.is_monotonic = p.monotonic
                current.sum.aggregation_temporality = (
                    AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
                    if p.temporality == "delta"
                    else AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
                )
        data = current.sum if p.kind == "sum" else current.gauge
        dp: NumberDataPoint = data.data_points.add()
        dp.attributes.extend(key_values(p.attributes))
        dp.start_time_unix_nano = p.start_ns if p.start_ns is not None else now - 1_000_000_000
        dp.time_unix_nano = p.time_ns if p.time_ns is not None else now
        if isinstance(p.value, int) and not isinstance(p.value, bool):
            dp.as_int = p.value
        else:
            dp.as_double = float(p.value)
    return req


def logs_request(
    events: Iterable[tuple[str, Mapping[str, Any]]], resource: Mapping[str, Any] | None = None
) -> ExportLogsServiceRequest:
    """Events as Claude Code sends them: log records with event.name / event.timestamp attributes."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(key_values(DEFAULT_RESOURCE if resource is None else resource))
    sl = rl.scope_logs.add()
    sl.scope.name = "com.anthropic.claude_code.events"
    now = time.time_ns()
    for seq, (name, attrs) in enumerate(events):
        lr: LogRecord = sl.log_records.add()
        lr.time_unix_nano = now
        lr.observed_time_unix_nano = now
        lr.body.string_value = name
        full = {
            "event.name": name.removeprefix("claude_code."),
            "event.timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now / 1e9)),
            "event.sequence": seq,
        }
        full.update(attrs)
        lr.attributes.extend(key_values(full))
    return req


def session_attrs(session_id: str = "sess-1", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "session.id": session_id,
        "user.account_uuid": "acct-1",
        "organization.id": "org-1",
        "terminal.type": "xterm",
    }
    out.update(extra)
    return out


def sample_metrics(session_id: str = "sess-1", n_sessions: int = 1) -> ExportMetricsServiceRequest:
    """A valid batch covering all eight Claude Code metrics."""
    points: list[Point] = []
    for i in range(n_sessions):
        sid = session_id if n_sessions == 1 else f"{session_id}-{i}"
        a = session_attrs(sid)
        m = {"model": "claude-sonnet-4-5", "query_source": "main"}
        points += [
            Point("claude_code.session.count", 1, {**a, "start_type": "fresh"}),
            Point("claude_code.token.usage", 1200, {**a, **m, "type": "input"}),
            Point("claude_code.token.usage", 350, {**a, **m, "type": "output"}),
            Point("claude_code.token.usage", 900, {**a, **m, "type": "cacheRead"}),
            Point("claude_code.token.usage", 100, {**a, **m, "type": "cacheCreation"}),
            Point("claude_code.cost.usage", 0.0123, {**a, **m}),
            Point("claude_code.lines_of_code.count", 42, {**a, "type": "added", "model": m["model"]}),
            Point("claude_code.lines_of_code.count", 7, {**a, "type": "removed", "model": m["model"]}),
            Point("claude_code.commit.count", 1, a),
            Point("claude_code.pull_request.count", 1, a),
            Point(
                "claude_code.code_edit_tool.decision",
                1,
                {**a, "tool_name": "Edit", "decision": "accept", "source": "config", "language": "Python"},
            ),
            Point("claude_code.active_time.total", 12.5, {**a, "type": "user"}),
        ]
    return metrics_request(points)


def sample_events(session_id: str = "sess-1", prompt: str = "<redacted>") -> ExportLogsServiceRequest:
    """A valid batch with one of each of the five Claude Code events."""
    a = session_attrs(session_id)
    return logs_request(
        [
            (
                "claude_code.user_prompt",
                {**a, "prompt_length": len(prompt), "prompt": prompt, "prompt.id": "p-1"},
            ),
            (
                "claude_code.api_request",
                {
                    **a,
                    "model": "claude-sonnet-4-5",
                    "cost_usd": 0.0123,
                    "duration_ms": 830,
                    "input_tokens": 1200,
                    "output_tokens": 350,
                    "cache_read_tokens": 900,
                    "cache_creation_tokens": 100,
                    "request_id": "req-1",
                },
            ),
            (
                "claude_code.api_error",
                {
                    **a,
                    "model": "claude-sonnet-4-5",
                    "error": "Overloaded",
                    "status_code": "529",
                    "duration_ms": 120,
                    "attempt": 1,
                },
            ),
            (
                "claude_code.tool_decision",
                {**a, "tool_name": "Edit", "tool_use_id": "t-1", "decision": "accept", "source": "config"},
            ),
            (
                "claude_code.tool_result",
                {**a, "tool_name": "Edit", "tool_use_id": "t-1", "success": "true", "duration_ms": 15},
            ),
        ]
    )
