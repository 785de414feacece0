"""Real OpenTelemetry Python SDK exporters (gRPC and HTTP/protobuf) and raw OTLP/JSON against the proxy."""

from __future__ import annotations

import json

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

RESOURCE = Resource.create({"service.name": "claude-code", "service.version": "2.0.0"})


def _export_tokens(exporter) -> int:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    counter = provider.get_meter("com.anthropic.claude_code").create_counter(
        "claude_code.token.usage", unit="tokens"
    )
    for i, kind in enumerate(("input", "output", "cacheRead", "cacheCreation")):
        counter.add(10 + i, {"type": kind, "model": "claude-sonnet-4-5", "session.id": "s-1"})
    assert provider.force_flush(10_000)
    provider.shutdown()
    return 4


@pytest.mark.integration
def test_sdk_grpc_metric_exporter_delivers(start_proxy):
    proxy = start_proxy()
    sent = _export_tokens(
        GrpcMetricExporter(
            endpoint=proxy.grpc, insecure=True, preferred_temporality={Counter: AggregationTemporality.DELTA}
        )
    )
    c = proxy.stats()["counters"]
    assert c["received"]["metrics"] == sent and c["accepted"]["metrics"] == sent
    assert c["requests"]["metrics"]["ok"] >= 1


@pytest.mark.integration
def test_sdk_http_protobuf_exporters_deliver_metrics_logs_and_spans(start_proxy):
    proxy = start_proxy()
    sent = _export_tokens(
        HttpMetricExporter(
            endpoint=proxy.http + "/v1/metrics", preferred_temporality={Counter: AggregationTemporality.DELTA}
        )
    )

    logs = LoggerProvider(resource=RESOURCE)
    logs.add_log_record_processor(SimpleLogRecordProcessor(HttpLogExporter(endpoint=proxy.http + "/v1/logs")))
    logger = logs.get_logger("com.anthropic.claude_code.events")
    from opentelemetry._logs import LogRecord

    for i in range(3):
        logger.emit(
            LogRecord(
                body="claude_code.tool_result", attributes={"event.name": "tool_result", "event.sequence": i}
            )
        )
    logs.shutdown()

    traces = TracerProvider(resource=RESOURCE)
    traces.add_span_processor(SimpleSpanProcessor(HttpSpanExporter(endpoint=proxy.http + "/v1/traces")))
    with (
        traces.get_tracer("t").start_as_current_span("outer"),
        traces.get_tracer("t").start_as_current_span("inner"),
    ):
        pass
    traces.shutdown()

    c = proxy.stats()["counters"]
    assert c["accepted"] == {"metrics": sent, "logs": 3, "traces": 2}


@pytest.mark.integration
def test_raw_otlp_json_with_hex_ids_string_ints_and_unknown_fields(start_proxy):
    proxy = start_proxy()
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "",
                                "name": "claude_code.interaction",
                                "kind": 1,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": 1544712661000000000,
                                "attributes": [
                                    {"key": "span.type", "value": {"stringValue": "interaction"}},
                                    {"key": "gen_ai.conversation.id", "value": {"stringValue": "s-1"}},
                                ],
                                "aNewFieldFromTheFuture": {"x": 1},
                            }
                        ]
                    }
                ],
            }
        ],
    }
    r = requests.post(
        proxy.http + "/v1/traces",
        data=json.dumps(body),
        timeout=10,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200 and r.json() == {}
    metrics = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "claude_code.session.count",
                                "sum": {
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {"asInt": "1", "timeUnixNano": "1"},
                                        {"asInt": 2, "timeUnixNano": 2},
                                    ],
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    r = requests.post(proxy.http + "/v1/metrics", json=metrics, timeout=10)
    assert r.status_code == 200
    c = proxy.stats()["counters"]
    assert c["accepted"]["traces"] == 1 and c["accepted"]["metrics"] == 2


@pytest.mark.integration
def test_sdk_otlp_json_http_exporter_with_gzip_delivers(start_proxy):
    from opentelemetry.exporter.otlp.common.http import Compression
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter as JsonLogExporter
    from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter as JsonMetricExporter

    proxy = start_proxy(auth={"bearer_token": "tok"})
    headers = {"Authorization": "Bearer tok"}
    sent = _export_tokens(
        JsonMetricExporter(
            endpoint=proxy.http + "/v1/metrics",
            headers=headers,
            compression=Compression.GZIP,
            preferred_temporality={Counter: AggregationTemporality.DELTA},
        )
    )
    logs = LoggerProvider(resource=RESOURCE)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(JsonLogExporter(endpoint=proxy.http + "/v1/logs", headers=headers))
    )
    from opentelemetry._logs import LogRecord

    logs.get_logger("events").emit(
        LogRecord(body="claude_code.user_prompt", attributes={"prompt_length": 12})
    )
    logs.shutdown()
    c = proxy.stats()["counters"]
    assert c["accepted"]["metrics"] == sent and c["accepted"]["logs"] == 1
    assert "unauthenticated" not in c["requests"]["metrics"]


@pytest.mark.integration
def test_sdk_grpc_exporter_with_gzip_and_oversized_message(start_proxy):
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from proxy_payloads import token_usage

    proxy = start_proxy(limits={"max_request_bytes": "64KiB"})
    sent = _export_tokens(
        OTLPMetricExporter(
            endpoint=proxy.grpc,
            insecure=True,
            compression=grpc.Compression.Gzip,
            preferred_temporality={Counter: AggregationTemporality.DELTA},
        )
    )
    assert proxy.stats()["counters"]["accepted"]["metrics"] == sent
    big = token_usage(2000).SerializeToString()
    assert len(big) > 64 * 1024
    stub = grpc.insecure_channel(proxy.grpc).unary_unary(
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    )
    try:
        stub(big, timeout=5)
        raise AssertionError("an oversized message was accepted")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Small enough on the wire but larger than the limit once inflated: refused too.
    try:
        stub(big, timeout=5, compression=grpc.Compression.Gzip)
        raise AssertionError("an oversized (inflated) message was accepted")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.integration
def test_sdk_json_exporter_with_deflate_delivers(start_proxy):
    from opentelemetry.exporter.otlp.common.http import Compression
    from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter as JsonMetricExporter

    proxy = start_proxy()
    sent = _export_tokens(
        JsonMetricExporter(
            endpoint=proxy.http + "/v1/metrics",
            compression=Compression.DEFLATE,
            preferred_temporality={Counter: AggregationTemporality.DELTA},
        )
    )
    assert proxy.stats()["counters"]["accepted"]["metrics"] == sent
