"""The real Collector with base.yaml on free ports: OTLP in (gRPC and HTTP), Claude Code names out,
events readable (and redacted) in its log, internal telemetry under the pinned names, bearer auth."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from labctl.otlp.probe import grpc_export
from tests.configs.confhelpers import Collector, running_collector, wait_text
from tests.configs.otlp_send import send_claude_code_event, send_claude_code_metrics

pytestmark = pytest.mark.integration

CLAUDE_CODE_NAMES = [
    "claude_code_session_count_total",
    "claude_code_lines_of_code_count_total",
    "claude_code_pull_request_count_total",
    "claude_code_commit_count_total",
    "claude_code_cost_usage_USD_total",
    "claude_code_token_usage_tokens_total",
    "claude_code_code_edit_tool_decision_total",
    "claude_code_active_time_seconds_total",
]


def _scrape(url: str) -> str:
    resp = requests.get(url, timeout=5)
    resp.raise_for_status()
    return resp.text


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_grpc_and_http_metrics_come_out_under_claude_code_names(collector: Collector) -> None:
    send_claude_code_metrics(
        GrpcMetricExporter(endpoint=collector.addr("otlp_grpc"), insecure=True), marker="grpc-1"
    )
    send_claude_code_metrics(
        HttpMetricExporter(endpoint=collector.url("otlp_http", "/v1/metrics")), marker="http-1", tokens=500
    )
    exporter = collector.url("prom_exporter", "/metrics")
    text = wait_text(
        "both markers on the prometheus exporter",
        lambda: _scrape(exporter),
        lambda t: 'lab_marker="http-1"' in t and 'lab_marker="grpc-1"' in t,
    )
    for name in CLAUDE_CODE_NAMES:
        assert re.search(rf"^{name}\{{", text, re.MULTILINE), f"{name} missing from the exporter"
    # Delta counters (Claude Code's default temporality) are accumulated by the exporter.
    assert _sample(text, "claude_code_token_usage_tokens_total", lab_marker="grpc-1", type="input") == 1200
    assert _sample(text, "claude_code_token_usage_tokens_total", lab_marker="http-1", type="input") == 500
    # Datapoint attributes become labels with dots turned into underscores.
    assert (
        _sample(text, "claude_code_cost_usage_USD_total", lab_marker="grpc-1", session_id="session-grpc-1")
        == 0.25
    )


def test_lab_marker_resource_attribute_becomes_a_label(collector: Collector) -> None:
    # An SDK that does not copy resource attributes onto points: lab.* still reaches every series.
    send_claude_code_metrics(
        GrpcMetricExporter(endpoint=collector.addr("otlp_grpc"), insecure=True),
        marker="resource-only",
        marker_on_points=False,
    )
    exporter = collector.url("prom_exporter", "/metrics")
    text = wait_text("resource marker", lambda: _scrape(exporter), lambda t: "resource-only" in t)
    assert _sample(text, "claude_code_session_count_total", lab_marker="resource-only") == 1
    # Other resource attributes stay on target_info only (no label explosion on every series).
    assert not re.search(r"^claude_code_session_count_total\{[^}]*os_type=", text, re.MULTILINE)
    assert re.search(r'^target_info\{[^}]*os_type="linux"', text, re.MULTILINE)


def test_events_are_readable_and_redacted_in_the_collector_log(collector: Collector) -> None:
    send_claude_code_event(collector.addr("otlp_grpc"), prompt="please refactor my secret-project")
    text = wait_text(
        "the event in the collector log", collector.log.read_text, lambda t: "claude_code.user_prompt" in t
    )
    assert "event.name: Str(user_prompt)" in text
    assert "prompt_length: Int(33)" in text
    assert "prompt: Str(****)" in text
    assert "secret-project" not in text
    assert "student@example.com" not in text


def test_internal_telemetry_uses_the_pinned_names(collector: Collector) -> None:
    send_claude_code_metrics(
        GrpcMetricExporter(endpoint=collector.addr("otlp_grpc"), insecure=True), marker="int"
    )
    internal = collector.url("internal", "/metrics")
    text = wait_text(
        "points accepted by the receiver and sent by the prometheus exporter (after the 1s batch)",
        lambda: _scrape(internal),
        lambda t: (
            (_sample(t, "otelcol_receiver_accepted_metric_points_total", transport="grpc") or 0) >= 8
            and (_sample(t, "otelcol_exporter_sent_metric_points_total", exporter="prometheus") or 0) >= 8
        ),
    )
    assert (
        _sample(text, "otelcol_receiver_refused_metric_points_total", receiver="otlp", transport="grpc") == 0
    )
    assert (_sample(text, "otelcol_exporter_sent_metric_points_total", exporter="prometheus") or 0) >= 8
    assert _sample(text, "otelcol_exporter_queue_capacity", exporter="prometheus") == 1000
    assert _sample(text, "otelcol_exporter_queue_size", exporter="prometheus") is not None
    assert re.search(r"^otelcol_process_memory_rss_bytes ", text, re.MULTILINE)


def _grpc_export(addr: str, token: str | None) -> grpc.StatusCode:
    return grpc_export(addr, {"authorization": f"Bearer {token}"} if token else None)[0]


def test_auth_overlay_requires_the_bearer_token(tmp_path: Path) -> None:
    token = "lab-secret-token"
    with running_collector(tmp_path, auth_token=token) as col:
        url = col.url("otlp_http", "/v1/metrics")
        body = metrics_service_pb2.ExportMetricsServiceRequest().SerializeToString()
        headers = {"Content-Type": "application/x-protobuf"}
        assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 401
        wrong = {**headers, "Authorization": "Bearer not-the-token"}
        assert requests.post(url, data=body, headers=wrong, timeout=5).status_code == 401
        right = {**headers, "Authorization": f"Bearer {token}"}
        assert requests.post(url, data=body, headers=right, timeout=5).status_code == 200
        assert _grpc_export(col.addr("otlp_grpc"), None) == grpc.StatusCode.UNAUTHENTICATED
        assert _grpc_export(col.addr("otlp_grpc"), "not-the-token") == grpc.StatusCode.UNAUTHENTICATED
        assert _grpc_export(col.addr("otlp_grpc"), token) == grpc.StatusCode.OK
        # The token never shows up in the Collector's own log.
        assert token not in col.log.read_text()
