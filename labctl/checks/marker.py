"""Send a marker through the running lab the way Claude Code does: OTLP metrics from the OpenTelemetry SDK.

The marker is the resource attribute `lab.marker`, copied onto every data point as Claude Code copies
OTEL_RESOURCE_ATTRIBUTES keys (so it becomes the `lab_marker` label in Prometheus). One "session" sends
each of Claude Code's counters once, so every dashboard panel has something to show, then one event
(an OTLP log record, for the event store) and one span (a one-span trace, for the trace store), both
carrying the same session.id and lab.marker.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

# Claude Code exports deltas by default; the Collector's prometheus exporter accumulates them.
_DELTA: dict[type, AggregationTemporality] = {Counter: AggregationTemporality.DELTA}

# name, unit, [(attributes, value)]: one session's worth, like a short Claude Code run.
SESSION_POINTS: list[tuple[str, str, list[tuple[dict[str, str], float]]]] = [
    ("claude_code.session.count", "", [({"start_type": "fresh"}, 1)]),
    (
        "claude_code.token.usage",
        "tokens",
        [
            ({"type": "input", "model": "claude-sonnet-4-5", "query_source": "main"}, 1200),
            ({"type": "output", "model": "claude-sonnet-4-5", "query_source": "main"}, 340),
            ({"type": "cacheRead", "model": "claude-sonnet-4-5", "query_source": "main"}, 5000),
            ({"type": "cacheCreation", "model": "claude-sonnet-4-5", "query_source": "main"}, 800),
        ],
    ),
    ("claude_code.cost.usage", "USD", [({"model": "claude-sonnet-4-5", "query_source": "main"}, 0.0123)]),
    ("claude_code.lines_of_code.count", "", [({"type": "added"}, 12), ({"type": "removed"}, 3)]),
    ("claude_code.commit.count", "", [({}, 1)]),
    ("claude_code.pull_request.count", "", [({}, 1)]),
    (
        "claude_code.code_edit_tool.decision",
        "",
        [
            ({"tool_name": "Edit", "decision": "accept", "source": "config", "language": "Python"}, 1),
        ],
    ),
    ("claude_code.active_time.total", "s", [({"type": "user"}, 4.0), ({"type": "cli"}, 2.5)]),
]


@dataclass
class Marker:
    value: str
    session_id: str
    points: int = 0
    events: int = 0
    spans: int = 0
    trace_id: str = ""  # the marker span's trace, 32 hex digits (Jaeger's trace id)
    commits: int = 0  # claude_code.commit.count sent for this marker (the sparse probe adds one)
    sent_ok: bool = False
    error: str | None = None
    endpoint: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)  # its model-request spans' ids (series_growth)


def new_marker() -> str:
    return f"check-{secrets.token_hex(4)}"


def send_marker(
    endpoint: str,
    marker: str,
    timeout_s: float = 5.0,
    headers: dict[str, str] | None = None,
    repeat: int = 1,
    events: bool = True,
    sparse: bool = False,
    spans: bool = False,
) -> Marker:
    """Export one session's counters to `endpoint` (OTLP gRPC, e.g. http://127.0.0.1:4317) `repeat` times.

    sparse: then one more commit after an interval in which that series had no point, as an SDK reports
    a series that skips intervals: its delta starts at the skipped collection, not at its own last point,
    and only a pipeline that sums such deltas (delta_to_cumulative) shows every commit.
    spans: first, one prompt's spans with a few model requests, each with its own request id."""
    session = str(uuid.uuid4())
    result = Marker(value=marker, session_id=session, endpoint=endpoint)
    resource = Resource.create(
        {"service.name": "claude-code", "service.version": "2.0.0-lab", "lab.marker": marker}
    )
    reader = InMemoryMetricReader(preferred_temporality=_DELTA)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("com.anthropic.claude_code")
    exporter = OTLPMetricExporter(
        endpoint=endpoint,
        insecure=True,
        timeout=timeout_s,
        headers=headers or {},
        preferred_temporality=_DELTA,
    )
    common = {
        "session.id": session,
        "user.account_uuid": "00000000-0000-4000-8000-00000000c0de",
        "organization.id": "lab-org",
        "terminal.type": "lab-check",
        "lab.marker": marker,
    }
    counters = {name: meter.create_counter(name, unit=unit) for name, unit, _ in SESSION_POINTS}
    # The SDK logs the transport error (e.g. "StatusCode.UNAVAILABLE ... Connection refused"); keep it as
    # evidence instead of letting it spill onto the student's terminal.
    captured = _Capture()
    sdk_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")
    sdk_logger.addHandler(captured)
    sdk_logger.propagate = False
    try:
        if spans:
            # First, so a pipeline that makes metrics of spans has them out by the time layer 2 looks.
            from labctl.checks.marker_spans import send_spans

            trace_id, error = send_spans(
                endpoint, resource, session, result.request_ids, timeout_s, headers, attributes=common
            )
            if error:
                result.error = error
                return result
            # One trace: the interaction and its model requests (the trace store's check counts them).
            result.spans, result.trace_id = 1 + len(result.request_ids), trace_id
        for _ in range(repeat):
            for name, _unit, points in SESSION_POINTS:
                for attrs, value in points:
                    counters[name].add(value, {**common, **attrs})
                    result.points += 1
            data = reader.get_metrics_data()
            if data is None:
                continue
            outcome = exporter.export(data, timeout_millis=timeout_s * 1000)
            if outcome.name != "SUCCESS":
                seen = "; ".join(captured.messages[-2:])
                result.error = f"export to {endpoint} returned {outcome.name}" + (f": {seen}" if seen else "")
                return result
            result.commits += 1
        if sparse:
            reader.get_metrics_data()  # an interval without a commit: the next delta starts here
            counters["claude_code.commit.count"].add(1, common)
            result.points += 1
            data = reader.get_metrics_data()
            sparse_outcome = exporter.export(data, timeout_millis=timeout_s * 1000) if data else None
            if sparse_outcome is None or sparse_outcome.name != "SUCCESS":
                result.error = f"the second commit's export to {endpoint} failed"
                return result
            result.commits += 1
        if events:
            error = _send_event(
                endpoint, resource, {**common, "event.name": "api_request"}, timeout_s, headers
            )
            if error:
                result.error = error
                return result
            result.events = 1
        result.sent_ok = True
        return result
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        sdk_logger.removeHandler(captured)
        sdk_logger.propagate = True
        exporter.shutdown()
        provider.shutdown()


def _send_event(
    endpoint: str,
    resource: Resource,
    attributes: dict[str, str],
    timeout_s: float,
    headers: dict[str, str] | None,
) -> str | None:
    """One `claude_code.api_request` event (an OTLP log record), as Claude Code sends its events."""
    exporter = OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=timeout_s, headers=headers or {})
    provider = LoggerProvider(resource=resource)
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    try:
        provider.get_logger("com.anthropic.claude_code.events").emit(
            event_name="claude_code.api_request",
            body="claude_code.api_request",
            attributes={
                **attributes,
                "event.timestamp": _iso_now(),
                "event.sequence": 1,
                "model": "claude-sonnet-4-5",
                "cost_usd": 0.0123,
                "duration_ms": 850,
                "input_tokens": 1200,
                "output_tokens": 340,
                "cache_read_tokens": 5000,
                "cache_creation_tokens": 800,
                "request_id": f"req_{secrets.token_hex(8)}",
                "query_source": "main",
            },
        )
        provider.force_flush()
        outcome = exporter.export(list(memory.get_finished_logs()))
        return None if outcome.name == "SUCCESS" else f"event export to {endpoint} returned {outcome.name}"
    finally:
        exporter.shutdown()
        provider.shutdown()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
