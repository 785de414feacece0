"""The marker's spans: one prompt with a few model requests, shaped like Claude Code's own
(`claude_code.interaction` with `claude_code.llm_request` children, CLAUDE_CODE_ENHANCED_TELEMETRY_BETA).

Each request carries its own `request_id`, as every real one does. Nothing in a healthy pipeline turns
an id into a label; when something does, these ids show up as label values on the Collector's exporter
and labctl/checks/series_growth.py reports it.
"""

from __future__ import annotations

import secrets

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import set_span_in_context

REQUESTS = 3
MODEL = "claude-sonnet-4-5"


def send_spans(
    endpoint: str,
    resource: Resource,
    session: str,
    request_ids: list[str],
    timeout_s: float,
    headers: dict[str, str] | None,
    attributes: dict[str, str] | None = None,
) -> tuple[str, str | None]:
    """Export the prompt's spans in one request; fills `request_ids`; returns (the trace id in hex, an
    error or None). `attributes` (the session's standard ones: session.id, lab.marker) go on every span,
    as Claude Code puts them there: the trace store finds the marker's trace by them."""
    common = attributes or {}
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("com.anthropic.claude_code.tracing")
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=timeout_s, headers=headers or {})
    try:
        prompt = tracer.start_span(
            "claude_code.interaction",
            attributes={**common, "span.type": "interaction", "gen_ai.conversation.id": session},
        )
        for _ in range(REQUESTS):
            rid = f"req_{secrets.token_hex(8)}"
            request_ids.append(rid)
            tracer.start_span(
                "claude_code.llm_request",
                context=set_span_in_context(prompt),
                attributes={
                    **common,
                    "span.type": "llm_request",
                    "gen_ai.conversation.id": session,
                    "gen_ai.request.model": MODEL,
                    "model": MODEL,
                    "request_id": rid,
                },
            ).end()
        prompt.end()
        trace_id = format(prompt.get_span_context().trace_id, "032x")
        outcome = exporter.export(memory.get_finished_spans())
        if outcome.name != "SUCCESS":
            return trace_id, f"span export to {endpoint} returned {outcome.name}"
        return trace_id, None
    finally:
        exporter.shutdown()
        provider.shutdown()
