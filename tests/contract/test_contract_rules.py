"""Each contract rule with a violating and a passing point, on real OTLP protobuf requests."""

from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from labctl.contract import Contract, contract_from_text, default_contract_path, load_contract
from labctl.contract.samples import (
    Point,
    logs_request,
    metrics_request,
    sample_events,
    sample_metrics,
    session_attrs,
)

TOKENS = {"model": "claude-sonnet-4-5", "type": "input"}


@pytest.fixture
def cc() -> Contract:
    return load_contract(default_contract_path())


def rules_of(contract: Contract, signal: str, request: Any) -> list[str]:
    return sorted(v["rule"] for v in contract.evaluate(signal, request).violations())


def tok(value: Any = 10, **attrs: Any) -> Point:
    a = {**session_attrs(), **TOKENS}
    a.update(attrs)
    return Point("claude_code.token.usage", value, {k: v for k, v in a.items() if v is not None})


def test_valid_samples_pass(cc: Contract) -> None:
    ev = cc.evaluate("metrics", sample_metrics())
    assert (ev.total, ev.rejected, ev.message) == (12, 0, "")
    assert all(r["verdict"] == "ok" and r["violations"] == [] for r in ev.records)
    ev = cc.evaluate("logs", sample_events())
    assert (ev.total, ev.rejected) == (5, 0)


def test_unknown_metric(cc: Contract) -> None:
    ev = cc.evaluate("metrics", metrics_request([Point("claude_code.tokens.used", 1, session_attrs())]))
    assert [v["rule"] for v in ev.violations()] == ["unknown_metric"]
    assert (
        ev.violations()[0]["path"]
        == "resourceMetrics[0].scopeMetrics[0].metrics[0](claude_code.tokens.used).name"
    )
    allow = contract_from_text("policy: {unknown_metrics: allow}\nmetrics:\n  a.b: {instrument: counter}\n")
    assert rules_of(allow, "metrics", metrics_request([Point("x.y", 1)])) == []


def test_instrument_monotonic_temporality_and_unit(cc: Contract) -> None:
    gauge = metrics_request(
        [Point("claude_code.token.usage", 5, {**session_attrs(), **TOKENS}, kind="gauge")]
    )
    assert rules_of(cc, "metrics", gauge) == ["instrument"]
    updown = metrics_request(
        [Point("claude_code.token.usage", 5, {**session_attrs(), **TOKENS}, monotonic=False)]
    )
    assert rules_of(cc, "metrics", updown) == ["monotonic"]
    wrong_unit = metrics_request(
        [Point("claude_code.token.usage", 5, {**session_attrs(), **TOKENS}, unit="1")]
    )
    assert rules_of(cc, "metrics", wrong_unit) == ["unit"]
    delta_only = contract_from_text("metrics:\n  a.b: {instrument: counter, temporality: delta}\n")
    assert rules_of(delta_only, "metrics", metrics_request([Point("a.b", 1, temporality="cumulative")])) == [
        "temporality"
    ]
    assert rules_of(delta_only, "metrics", metrics_request([Point("a.b", 1, temporality="delta")])) == []
    # UNSPECIFIED temporality is invalid OTLP for a sum, whatever the contract says
    req = metrics_request([Point("a.b", 1)])
    req.resource_metrics[0].scope_metrics[0].metrics[
        0
    ].sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_UNSPECIFIED
    assert rules_of(delta_only, "metrics", req) == ["temporality"]


def test_required_attribute_and_allowed_values(cc: Contract) -> None:
    assert rules_of(cc, "metrics", metrics_request([tok(type=None)])) == ["required_attribute"]
    assert rules_of(cc, "metrics", metrics_request([tok(type="tokens")])) == ["attribute_value"]
    for t in ("input", "output", "cacheRead", "cacheCreation"):
        assert rules_of(cc, "metrics", metrics_request([tok(type=t)])) == []
    ev = cc.evaluate("metrics", metrics_request([tok(type="bogus")]))
    v = ev.violations()[0]
    assert v["path"].endswith(".sum.dataPoints[0].attributes[type]")
    assert "allowed: cacheCreation, cacheRead, input, output" in v["message"]


def test_attribute_type_range_and_unknown_attribute_policy() -> None:
    c = contract_from_text(
        "policy: {unknown_attributes: violation}\n"
        "metrics:\n  a.b:\n    instrument: counter\n    attributes:\n"
        "      n: {type: int, range: [0, 10]}\n      s: {type: string}\n"
    )
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"n": 5, "s": "x"})])) == []
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"n": "five"})])) == ["attribute_type"]
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"n": 11})])) == ["attribute_range"]
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"s": 3})])) == ["attribute_type"]
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"zzz": "1"})])) == ["unknown_attribute"]


def test_value_rules(cc: Contract) -> None:
    assert rules_of(cc, "metrics", metrics_request([tok(float("nan"))])) == ["value_not_finite"]
    assert rules_of(cc, "metrics", metrics_request([tok(math.inf)])) == ["value_not_finite"]
    assert rules_of(cc, "metrics", metrics_request([tok(-3)])) == ["negative_counter", "value_range"]
    assert rules_of(cc, "metrics", metrics_request([tok(20_000_000)])) == ["value_range"]
    assert rules_of(cc, "metrics", metrics_request([tok(0)])) == []
    missing = metrics_request([tok(1)])
    missing.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].ClearField("as_int")
    assert rules_of(cc, "metrics", missing) == ["value_missing"]
    typed = contract_from_text("metrics:\n  a.b: {instrument: counter, value_type: int}\n")
    assert rules_of(typed, "metrics", metrics_request([Point("a.b", 1.5)])) == ["value_type"]
    assert rules_of(typed, "metrics", metrics_request([Point("a.b", 2)])) == []
    # an updowncounter may go negative
    ud = contract_from_text("metrics:\n  a.b: {instrument: updowncounter}\n")
    assert rules_of(ud, "metrics", metrics_request([Point("a.b", -2, monotonic=False)])) == []


def test_cardinality_limit_per_attribute_and_series() -> None:
    c = contract_from_text(
        "metrics:\n  a.b:\n    instrument: counter\n    cardinality: {session.id: 3, '*': 4}\n"
    )
    first = metrics_request([Point("a.b", 1, {"session.id": f"s{i}"}) for i in range(3)])
    assert rules_of(c, "metrics", first) == []
    # the same sessions again are fine (state is kept between requests), a fourth one is not
    assert rules_of(c, "metrics", first) == []
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"session.id": "s9"})])) == ["cardinality"]
    # series: a 4th distinct attribute set is allowed, the 5th is not
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"session.id": "s0", "x": "1"})])) == []
    assert rules_of(c, "metrics", metrics_request([Point("a.b", 1, {"session.id": "s0", "x": "2"})])) == [
        "cardinality"
    ]


def test_resource_attributes(cc: Contract) -> None:
    point = [tok()]
    assert rules_of(cc, "metrics", metrics_request(point, resource={"service.version": "1"})) == [
        "resource_required_attribute"
    ]
    assert rules_of(cc, "metrics", metrics_request(point, resource={"service.name": "other"})) == [
        "resource_attribute_value"
    ]
    assert rules_of(cc, "metrics", metrics_request(point, resource={"service.name": "claude-code"})) == []


def test_events(cc: Contract) -> None:
    a = session_attrs()
    ok = logs_request(
        [("claude_code.tool_decision", {**a, "tool_name": "Edit", "decision": "accept", "source": "hook"})]
    )
    assert rules_of(cc, "logs", ok) == []
    bad = logs_request(
        [("claude_code.tool_decision", {**a, "tool_name": "Edit", "decision": "maybe", "source": "hook"})]
    )
    assert rules_of(cc, "logs", bad) == ["attribute_value"]
    missing = logs_request([("claude_code.api_request", {**a, "model": "m"})])
    assert rules_of(cc, "logs", missing) == ["required_attribute"] * 6
    negative = logs_request([("claude_code.api_error", {**a, "model": "m", "error": "x", "duration_ms": -1})])
    assert rules_of(cc, "logs", negative) == ["attribute_range"]
    unknown = logs_request([("claude_code.weird_event", a)])
    assert rules_of(cc, "logs", unknown) == ["unknown_event"]
    # both spellings of the event name (documented prefixed, sent short) are the same event
    prefixed = logs_request([("claude_code.user_prompt", {**a, "prompt_length": 3})])
    prefixed.resource_logs[0].scope_logs[0].log_records[0].attributes[
        0
    ].value.string_value = "claude_code.user_prompt"
    assert rules_of(cc, "logs", prefixed) == []
    plain_log = logs_request([("x", {})])
    del plain_log.resource_logs[0].scope_logs[0].log_records[0].attributes[:]
    assert rules_of(cc, "logs", plain_log) == []
    strict = contract_from_text("policy: {logs_without_event_name: violation}\nevents:\n  e: {}\n")
    assert rules_of(strict, "logs", plain_log) == ["missing_event_name"]


def test_malformed_log_records_whatever_the_event(cc: Contract) -> None:
    # Ids the Collector cannot decode and times the event store drops: reported for any log record.
    import time

    a = session_attrs()
    ok = logs_request(
        [("claude_code.tool_decision", {**a, "tool_name": "Edit", "decision": "accept", "source": "hook"})]
    )
    record = ok.resource_logs[0].scope_logs[0].log_records[0]
    record.trace_id, record.span_id = bytes(16), bytes(8)
    record.time_unix_nano = time.time_ns() + 3600 * 10**9  # an hour of clock skew is fine
    assert rules_of(cc, "logs", ok) == []
    record.trace_id, record.span_id = b"\x01\x02\x03", bytes(9)
    found = cc.evaluate("logs", ok).violations()
    assert [(v["rule"], v["path"].rsplit(".", 1)[1]) for v in found] == [
        ("malformed_id", "trace_id"),
        ("malformed_id", "span_id"),
    ]
    assert "trace_id is 3 bytes (16, or none)" in found[0]["message"]
    record.trace_id, record.span_id = b"", b""
    for days, words in ((3, "3 days ahead of"), (-8, "8 days behind")):
        record.time_unix_nano = time.time_ns() + days * 86400 * 10**9
        (v,) = cc.evaluate("logs", ok).violations()
        assert v["rule"] == "timestamp_range" and words in v["message"], v
    record.time_unix_nano = 0  # no time: the receiving end stamps it
    assert rules_of(cc, "logs", ok) == []


def test_sensitive_attribute_value_never_in_a_message(cc: Contract) -> None:
    secret = "please refactor the billing module"
    req = logs_request(
        [("claude_code.user_prompt", {**session_attrs(), "prompt_length": 3, "prompt": 12345})]
    )
    msgs = [v["message"] for v in cc.evaluate("logs", req).violations()]
    assert msgs and all("12345" not in m for m in msgs)
    req = logs_request(
        [("claude_code.user_prompt", {**session_attrs(), "prompt_length": 3, "prompt": secret})]
    )
    assert cc.evaluate("logs", req).violations() == []


def test_histogram_rules() -> None:
    c = contract_from_text("metrics:\n  h: {instrument: histogram}\n")
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="h")
    m.histogram.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    p = m.histogram.data_points.add(count=3, sum=4.5, bucket_counts=[1, 2], explicit_bounds=[1.0])
    assert rules_of(c, "metrics", req) == []
    p.count = 4
    assert rules_of(c, "metrics", req) == ["histogram_buckets"]
    p.count = 3
    p.sum = float("nan")
    assert rules_of(c, "metrics", req) == ["value_not_finite"]


def test_filtered_request_drops_exactly_the_violating_points(cc: Contract) -> None:
    req = metrics_request(
        [tok(1), tok(-1), tok(2, type="bogus"), tok(3), Point("unknown.metric", 1, session_attrs())]
    )
    ev = cc.evaluate("metrics", req)
    assert (ev.total, ev.rejected) == (5, 3)
    assert "3 of 5 data points violate contract 'claude-code'" in ev.message
    out = ev.filtered_request()
    metrics = out.resource_metrics[0].scope_metrics[0].metrics
    assert [m.name for m in metrics] == ["claude_code.token.usage"]
    assert [p.as_int for p in metrics[0].sum.data_points] == [1, 3]
    assert len(req.resource_metrics[0].scope_metrics[0].metrics) == 2  # the original is untouched
    assert cc.evaluate("metrics", out).rejected == 0
    clean = sample_metrics()
    assert cc.evaluate("metrics", clean).filtered_request() is clean


def test_filtered_logs_request(cc: Contract) -> None:
    a = session_attrs()
    req = logs_request(
        [
            ("claude_code.tool_decision", {**a, "tool_name": "E", "decision": "accept", "source": "hook"}),
            ("claude_code.nope", a),
        ]
    )
    ev = cc.evaluate("logs", req)
    out = ev.filtered_request()
    assert len(out.resource_logs[0].scope_logs[0].log_records) == 1
    assert ev.rejected == 1


def test_series_cache_gives_the_same_verdicts_as_first_sight(cc: Contract) -> None:
    """The fast path (seen series) must agree with full decoding, request after request."""
    points = [tok(5), tok(6, type="bogus"), tok(-1), tok(float("nan")), tok(7, model=None)]
    first = cc.evaluate("metrics", metrics_request(points))
    for _ in range(3):
        again = cc.evaluate("metrics", metrics_request(points))
        assert [r["violations"] for r in again.records] == [r["violations"] for r in first.records]
        assert [r["attributes"] for r in again.records] == [r["attributes"] for r in first.records]
        assert [r["value"] for r in again.records] == [5, 6, -1, "NaN", 7]
    # exemplars change the byte layout: they take the plain path and still get checked
    req = metrics_request([tok(-1)])
    req.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].exemplars.add(as_int=1)
    assert rules_of(cc, "metrics", req) == ["negative_counter", "value_range"]


def test_records_carry_what_a_student_needs(cc: Contract) -> None:
    rec = cc.evaluate("metrics", metrics_request([tok(42)])).records[0]
    assert rec["signal"] == "metrics" and rec["name"] == "claude_code.token.usage"
    assert (
        rec["kind"] == "sum"
        and rec["unit"] == "tokens"
        and rec["temporality"] == "delta"
        and rec["monotonic"]
    )
    assert rec["value"] == 42 and rec["attributes"]["type"] == "input"
    assert (
        rec["resource"]["service.name"] == "claude-code"
        and rec["scope"]["name"] == "com.anthropic.claude_code"
    )
    assert rec["time"].endswith("Z") and rec["verdict"] == "ok"
    ev = cc.evaluate("logs", sample_events())
    names = [r["name"] for r in ev.records]
    assert names == ["user_prompt", "api_request", "api_error", "tool_decision", "tool_result"]
    assert all(r["kind"] == "event" for r in ev.records)


def test_spans_get_records_and_no_rules_from_a_contract_without_spans() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    cc = contract_from_text("metrics:\n  a.b: {instrument: counter}\n")
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss.spans.add(
        name="tool.run",
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        start_time_unix_nano=10**18,
        end_time_unix_nano=10**18 + 2_500_000,
    )
    ev = cc.evaluate("traces", req)
    assert (ev.total, ev.rejected) == (1, 0)
    rec = ev.records[0]
    assert rec["name"] == "tool.run" and rec["value"] == 2.5 and rec["unit"] == "ms"
    assert rec["trace_id"] == "01" * 16 and rec["verdict"] == "ok"
    assert rec["span_kind"] == "unspecified" and rec["parent_span_id"] == ""
    assert ev.filtered_request() is req
