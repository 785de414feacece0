"""Claude-Code-shaped telemetry sent with the real OpenTelemetry Python SDK (for the config tests).

Same meter name, metric names, units, attributes and delta temporality as Claude Code's exporter;
one call exports one batch and shuts the provider down (so every call is a fresh "session").
"""

from __future__ import annotations

from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

METER = "com.anthropic.claude_code"


def _resource(marker: str) -> Resource:
    return Resource.create(
        {
            "service.name": "claude-code",
            "service.version": "2.0.14",
            "os.type": "linux",
            "host.arch": "amd64",
            "lab.marker": marker,
        }
    )


def send_claude_code_metrics(
    exporter: MetricExporter,
    *,
    marker: str,
    tokens: int = 1200,
    cost: float = 0.25,
    marker_on_points: bool = True,
) -> None:
    """All eight Claude Code counters once, as delta sums, through `exporter`."""
    exporter._preferred_temporality = {Counter: AggregationTemporality.DELTA}
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(resource=_resource(marker), metric_readers=[reader])
    meter = provider.get_meter(METER, "2.0.14")
    base = {
        "session.id": f"session-{marker}",
        "user.account_uuid": "0b0c6a52-1d1f-4e0e-9d7d-5a4b9c1f2e3d",
        "organization.id": "org-lab",
        "terminal.type": "vscode",
    }
    if marker_on_points:
        base["lab.marker"] = marker  # Claude Code copies OTEL_RESOURCE_ATTRIBUTES keys onto points
    model = {"model": "claude-sonnet-4-5", "query_source": "main"}
    meter.create_counter("claude_code.session.count").add(1, {**base, "start_type": "fresh"})
    meter.create_counter("claude_code.token.usage", unit="tokens").add(
        tokens, {**base, **model, "type": "input"}
    )
    meter.create_counter("claude_code.token.usage", unit="tokens").add(
        tokens // 4, {**base, **model, "type": "output"}
    )
    meter.create_counter("claude_code.cost.usage", unit="USD").add(cost, {**base, **model})
    meter.create_counter("claude_code.active_time.total", unit="s").add(42.0, {**base, "type": "cli"})
    meter.create_counter("claude_code.lines_of_code.count").add(
        30, {**base, "type": "added", "model": model["model"]}
    )
    meter.create_counter("claude_code.lines_of_code.count").add(
        4, {**base, "type": "removed", "model": model["model"]}
    )
    meter.create_counter("claude_code.commit.count").add(1, base)
    meter.create_counter("claude_code.pull_request.count").add(1, base)
    decision = meter.create_counter("claude_code.code_edit_tool.decision")
    decision.add(
        3, {**base, "tool_name": "Edit", "decision": "accept", "source": "config", "language": "Python"}
    )
    decision.add(
        1, {**base, "tool_name": "Write", "decision": "reject", "source": "user_reject", "language": "Go"}
    )
    if not provider.force_flush(timeout_millis=15_000):
        raise RuntimeError("the SDK could not flush its metrics")
    provider.shutdown()


def send_claude_code_event(grpc_addr: str, *, prompt: str, marker: str = "event") -> None:
    """One `claude_code.user_prompt` event (with prompt text, as with OTEL_LOG_USER_PROMPTS=1) over gRPC."""
    provider = LoggerProvider(resource=_resource(marker))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=grpc_addr, insecure=True))
    )
    logger = provider.get_logger("com.anthropic.claude_code.events")
    logger.emit(
        LogRecord(
            body="claude_code.user_prompt",
            attributes={
                "event.name": "user_prompt",
                "event.timestamp": "2026-11-27T10:00:00.000Z",
                "event.sequence": 1,
                "session.id": f"session-{marker}",
                "user.email": "student@example.com",
                "prompt_length": len(prompt),
                "prompt": prompt,
                "prompt.id": "p-1",
                "lab.marker": marker,
            },
        )
    )
    provider.shutdown()


def send_tool_decisions(grpc_addr: str, decisions: list[tuple[str, str, str]], *, marker: str) -> None:
    """`claude_code.tool_decision` events over gRPC, one per (tool_name, decision, source)."""
    provider = LoggerProvider(resource=_resource(marker))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=grpc_addr, insecure=True))
    )
    logger = provider.get_logger("com.anthropic.claude_code.events")
    for n, (tool, decision, source) in enumerate(decisions, start=1):
        logger.emit(
            LogRecord(
                body="claude_code.tool_decision",
                attributes={
                    "event.name": "tool_decision",
                    "event.timestamp": "2026-11-27T10:00:00.000Z",
                    "event.sequence": n,
                    "session.id": f"session-{marker}",
                    "tool_name": tool,
                    "tool_use_id": f"toolu_{marker}_{n}",
                    "decision": decision,
                    "source": source,
                    "lab.marker": marker,
                },
            )
        )
    provider.shutdown()
