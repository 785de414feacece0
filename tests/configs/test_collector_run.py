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
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

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
    # Delta counters (Claude Code's default temporality) come out as cumulative totals (delta_to_cumulative).
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


# Interval by interval, what each series gets (None: no measurement in that interval, so the SDK exports
# no point for it). "steady" is updated every interval; "sparse" skips intervals 2 and 4, like a
# Claude Code session that is idle while another one works.
_SPARSE_PLAN = {
    "steady": [100, 200, 300, 400, 500, 600],
    "sparse": [1000, 2000, None, 4000, None, 8000],
}
_SPARSE_COST = {"steady": 0.5, "sparse": 0.25}  # USD per token-interval, a double-valued counter too


def test_sparse_delta_counters_are_summed_exactly(collector: Collector) -> None:
    """Regression: a delta series with gaps must still add up to what was sent.

    The OpenTelemetry SDK (Claude Code's too) exports a delta point only for series that got a
    measurement; the next point of a series that skipped intervals starts at the previous *collection*
    time, not at that series' last timestamp. The prometheus exporter on its own adds a delta only when
    its start equals the previous point's timestamp and otherwise *replaces* the value — without the
    delta_to_cumulative processor "sparse" shows 8000 instead of 15000, with no error anywhere.
    """
    exporter = GrpcMetricExporter(
        endpoint=collector.addr("otlp_grpc"),
        insecure=True,
        preferred_temporality={Counter: AggregationTemporality.DELTA},
    )
    # A long interval: the test decides when an interval ends (force_flush = one collect + export).
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "claude-code", "lab.marker": "sparse"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("com.anthropic.claude_code", "2.0.14")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    cost = meter.create_counter("claude_code.cost.usage", unit="USD")
    sent_tokens = dict.fromkeys(_SPARSE_PLAN, 0)
    sent_cost = dict.fromkeys(_SPARSE_PLAN, 0.0)
    try:
        for interval in range(len(_SPARSE_PLAN["steady"])):
            for session, values in _SPARSE_PLAN.items():
                value = values[interval]
                if value is None:
                    continue
                attrs = {"session.id": f"session-{session}", "type": "input", "model": "claude-sonnet-4-5"}
                tokens.add(value, attrs)
                cost.add(_SPARSE_COST[session] * value / 100, {k: v for k, v in attrs.items() if k != "type"})
                sent_tokens[session] += value
                sent_cost[session] += _SPARSE_COST[session] * value / 100
            assert provider.force_flush(timeout_millis=15_000), "the SDK could not export an interval"
    finally:
        provider.shutdown()
    assert sent_tokens == {"steady": 2100, "sparse": 15000}  # the plan itself, spelled out

    exporter_url = collector.url("prom_exporter", "/metrics")
    # "steady" has no gaps, so once it shows its full sum every interval has reached the exporter.
    text = wait_text(
        "every interval on the prometheus exporter",
        lambda: _scrape(exporter_url),
        lambda t: (
            _sample(t, "claude_code_token_usage_tokens_total", session_id="session-steady")
            == sent_tokens["steady"]
        ),
    )
    for session in _SPARSE_PLAN:
        got = _sample(text, "claude_code_token_usage_tokens_total", session_id=f"session-{session}")
        assert got == sent_tokens[session], (
            f"{session}: exporter shows {got} tokens, {sent_tokens[session]} sent"
        )
        got_cost = _sample(text, "claude_code_cost_usage_USD_total", session_id=f"session-{session}")
        assert got_cost == pytest.approx(sent_cost[session]), (
            f"{session}: cost {got_cost}, {sent_cost[session]} sent"
        )


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
