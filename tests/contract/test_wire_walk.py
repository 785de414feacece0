"""Evaluating from the request's wire bytes gives exactly what evaluating the parsed message gives.

The proxy hands the contract the bytes a request arrived in (labctl.otlp.wire finds the points);
other encoders lay fields out in other orders, repeat messages, add exemplars or unknown fields: every
such request must come out the same as through the protobuf objects alone.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from fuzz_budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from labctl.contract import Contract, default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, sample_metrics, session_attrs
from labctl.otlp.wire import number_point_regions, varint

A = {**session_attrs(), "model": "claude-sonnet-4-5"}


def both(c: Contract, raw: bytes) -> tuple[Any, Any]:
    """(records, rejected) through the message alone and through the wire bytes, on twin contracts."""
    twin = Contract(c.spec)
    msg = ExportMetricsServiceRequest.FromString(raw)
    plain = c.evaluate("metrics", msg)
    walked = twin.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw)
    return (plain.records, plain.rejected), (walked.records, walked.rejected)


def _fields(buf: bytes) -> list[bytes]:
    """The top-level fields of one message, each as its raw bytes (tag included)."""
    out, pos = [], 0
    while pos < len(buf):
        start = pos
        key = buf[pos]
        pos += 1
        wire = key & 7
        if wire == 0:
            while buf[pos] >= 0x80:
                pos += 1
            pos += 1
        elif wire == 1:
            pos += 8
        elif wire == 2:
            n, shift = 0, 0
            while True:
                b = buf[pos]
                pos += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            pos += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append(buf[start:pos])
    return out


def point_spans(raw: bytes) -> dict[tuple[int, int, int], list[tuple[int, int]]]:
    """(start, end) of every data point, found from the regions the contract walks."""
    regions = number_point_regions(raw)
    assert regions is not None
    out: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for key, (pos, end) in regions.items():
        spans = out[key] = []
        for field in _fields(raw[pos:end]):
            if field[0] == 0x0A:
                n, i = varint(field, 1)
                spans.append((pos + i, pos + i + n))
            pos += len(field)
    return out


def attributes_first(raw: bytes) -> bytes:
    """The same request with every point's attributes written before its timestamps and value, as an
    encoder that follows the .proto declaration order would: same lengths, so it is patched in place."""
    out = bytearray(raw)
    for spans in point_spans(raw).values():
        for start, end in spans:
            fields = _fields(raw[start:end])
            attrs = [f for f in fields if f[0] == 0x3A]
            rest = [f for f in fields if f[0] != 0x3A]
            out[start:end] = b"".join(attrs + rest)
    return bytes(out)


def test_points_of_the_labs_sample_are_found() -> None:
    raw = sample_metrics(n_sessions=3).SerializeToString()
    spans = point_spans(raw)
    msg = ExportMetricsServiceRequest.FromString(raw)
    sm = msg.resource_metrics[0].scope_metrics[0]
    assert [len(spans[(0, 0, i)]) for i in range(len(sm.metrics))] == [
        len(getattr(m, m.WhichOneof("data")).data_points) for m in sm.metrics
    ]
    start, end = spans[(0, 0, 0)][0]
    assert raw[start:end] == sm.metrics[0].sum.data_points[0].SerializeToString()


def test_same_verdicts_and_records_through_either_path() -> None:
    c = load_contract(default_contract_path())
    pts = [
        Point("claude_code.token.usage", 5, {**A, "type": "input"}),
        Point("claude_code.token.usage", 6.5, {**A, "type": "output"}),
        Point("claude_code.token.usage", float("nan"), {**A, "type": "input"}),
        Point("claude_code.token.usage", -3, {**A, "type": "cacheRead"}),
        Point("claude_code.token.usage", 7, {**A, "type": "bogus"}),
        Point("claude_code.cost.usage", 0.25, {**A, "prompt": "secret"}),
        Point("claude_code.cost.usage", 0.5, {}),
        Point("some.gauge", 3, A, kind="gauge"),
        Point("claude_code.session.count", 1, A, temporality="cumulative"),
        Point("claude_code.token.usage", 8, {**A, "type": "input", "big": "x" * 200}),  # 2-byte length
        Point("claude_code.token.usage", 9, {**A, "type": "input", "huge": "y" * 20_000}),
    ]  # 3-byte length
    req = metrics_request(pts)
    req.resource_metrics.add().CopyFrom(
        metrics_request(pts[:3], resource={"service.name": "other"}).resource_metrics[0]
    )
    for raw in (req.SerializeToString(), attributes_first(req.SerializeToString())):
        for _ in range(2):  # the second pass takes every series from the contract's cache
            plain, walked = both(c, raw)
            assert walked == plain
            assert plain[1] >= 4


def one_metric_per_point(req: ExportMetricsServiceRequest) -> ExportMetricsServiceRequest:
    """The same points with a Metric message each, as a load generator sends them."""
    out = ExportMetricsServiceRequest()
    out.CopyFrom(req)
    for rm in out.resource_metrics:
        for sm in rm.scope_metrics:
            split = []
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                for p in getattr(m, kind).data_points:
                    one = type(m)()
                    one.CopyFrom(m)
                    points = getattr(one, kind).data_points
                    del points[:]
                    points.add().CopyFrom(p)
                    split.append(one)
            del sm.metrics[:]
            sm.metrics.extend(split)
    return out


def test_one_point_metrics_take_the_wire_path_with_the_same_verdicts() -> None:
    # Descriptions are learnt from the first metric of each; later ones, in this request and the next,
    # are read from the wire alone. Bad values, bad attributes and a bad unit must still come out alike.
    c = load_contract(default_contract_path())
    pts = [
        Point("claude_code.token.usage", 5, {**A, "type": "input"}),
        Point("claude_code.token.usage", 6.5, {**A, "type": "output"}),
        Point("claude_code.token.usage", 5, {**A, "type": "input"}),
        Point("claude_code.token.usage", float("inf"), {**A, "type": "input"}),
        Point("claude_code.token.usage", -3, {**A, "type": "input"}),
        Point("claude_code.token.usage", 7, {**A, "type": "bogus"}),
        Point("claude_code.token.usage", 7, {**A, "type": "input"}, unit="bytes"),
        Point("claude_code.cost.usage", 0.25, {**A, "prompt": "secret"}),
        Point("claude_code.cost.usage", 0.5, A),
        Point("other.metric", 2, A, kind="gauge"),
    ]
    req = one_metric_per_point(metrics_request(pts))
    assert len(req.resource_metrics[0].scope_metrics[0].metrics) == len(pts)
    raw = req.SerializeToString()
    twin = Contract(c.spec)
    for _ in range(3):
        plain = c.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw))
        walked = twin.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw)
        assert (walked.records, walked.rejected) == (plain.records, plain.rejected)
        assert walked.rejected == 5
        assert walked.metric_names == plain.metric_names == {p.metric for p in pts}
    assert twin._by_wire  # the descriptions were learnt (the test would prove nothing otherwise)


def test_exemplars_unknown_fields_and_repeated_messages() -> None:
    c = load_contract(default_contract_path())
    req = metrics_request(
        [
            Point("claude_code.token.usage", 5, {**A, "type": "input"}),
            Point("claude_code.token.usage", 9, {**A, "type": "output"}),
        ]
    )
    dp = req.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
    dp.exemplars.add(as_double=1.0, time_unix_nano=5)
    dp.flags = 1
    raw = req.SerializeToString()
    plain, walked = both(c, raw)
    assert walked == plain
    # an unknown field (number 99, fixed64) inside a point and a second ScopeMetrics
    unknown = bytes([0x99, 0x06]) + struct.pack("<Q", 7)
    start, end = point_spans(raw)[(0, 0, 0)][1]
    with_unknown = ExportMetricsServiceRequest.FromString(raw)
    p2 = with_unknown.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[1]
    p2.ParseFromString(raw[start:end] + unknown)
    with_unknown.resource_metrics[0].scope_metrics.add().CopyFrom(req.resource_metrics[0].scope_metrics[0])
    raw2 = with_unknown.SerializeToString()
    plain, walked = both(c, raw2)
    assert walked == plain and len(walked[0]) == 4
    # a request written twice in a row parses as one with both ResourceMetrics (repeated fields concatenate)
    twice = raw + raw
    plain, walked = both(c, twice)
    assert walked == plain and len(walked[0]) == 4


def test_bytes_that_cannot_be_walked_fall_back_to_the_message() -> None:
    assert number_point_regions(b"\x0b\x01") is None  # a group wire type
    assert number_point_regions(b"\x0a\x05\x12\x09abc") is None  # a length past the end
    assert number_point_regions(b"") == {}
    c = load_contract(default_contract_path())
    req = metrics_request([Point("claude_code.token.usage", 5, {**A, "type": "input"})])
    ev = c.evaluate("metrics", req, b"\x0b\x01")  # bytes that are not this request's: message wins
    assert ev.total == 1 and ev.records[0]["value"] == 5


# --- any request protobuf can write: random structure, then shuffled field order -------------------

_values = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True))
_attrs = st.dictionaries(
    st.sampled_from(["session.id", "type", "model", "user.id", "x", "terminal.type"]),
    st.one_of(st.text(max_size=300), st.integers(-5, 5)),
    max_size=5,
)
_points = st.lists(st.tuples(_values, _attrs, st.booleans(), st.integers(0, 3)), max_size=6)
_metrics = st.lists(
    st.tuples(
        st.sampled_from(
            ["claude_code.token.usage", "claude_code.cost.usage", "claude_code.session.count", "other.metric"]
        ),
        st.sampled_from(["sum", "gauge", "histogram", "none"]),
        _points,
    ),
    max_size=4,
)


def _request(resources: list[list[Any]]) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for metrics in resources:
        rm = req.resource_metrics.add()
        rm.resource.attributes.add(key="service.name").value.string_value = "claude-code"
        sm = rm.scope_metrics.add()
        for name, kind, points in metrics:
            m = sm.metrics.add(name=name)
            if kind == "none":
                continue
            data = getattr(m, kind)
            if kind == "sum":
                data.is_monotonic = True
                data.aggregation_temporality = 1
            for value, attrs, as_int, extras in points:
                p = data.data_points.add()
                if kind == "histogram":
                    p.count = abs(int(value)) if isinstance(value, int) else 1
                elif isinstance(value, int) or as_int:
                    p.as_int = int(value) if isinstance(value, int) else 7
                else:
                    p.as_double = value
                for k, v in attrs.items():
                    kv = p.attributes.add(key=k)
                    if isinstance(v, str):
                        kv.value.string_value = v
                    else:
                        kv.value.int_value = v
                p.time_unix_nano = 1_700_000_000_000_000_000 + extras
                if extras & 1:
                    p.start_time_unix_nano = 1_699_999_999_000_000_000
                if kind != "histogram" and extras & 2:
                    p.exemplars.add(as_double=1.5)
    return req


@settings(max_examples=examples(300), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_metrics, min_size=1, max_size=3), st.randoms(use_true_random=False))
def test_any_request_evaluates_the_same_from_its_bytes(resources: list[list[Any]], rnd: Any) -> None:
    c = load_contract(default_contract_path())
    raw = _request(resources).SerializeToString()
    shuffled = bytearray(raw)
    for spans in point_spans(raw).values():  # each point's fields in another order: an encoder may
        for start, end in spans:
            fields = _fields(raw[start:end])
            rnd.shuffle(fields)
            attrs = [f for f in fields if f[0] == 0x3A]  # repeated attributes keep their own order
            it = iter(sorted(attrs, key=lambda f: raw[start:end].index(f)))
            shuffled[start:end] = b"".join(next(it) if f[0] == 0x3A else f for f in fields)
    # and the same points with a Metric each, twice: the second pass reads known descriptions from the wire
    split = _request(resources)
    if all(
        m.WhichOneof("data") for rm in split.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    ):
        split = one_metric_per_point(split)
    base, twin = Contract(c.spec), Contract(c.spec)  # `c` stays as it was for the checks below
    for _ in range(2):
        data = split.SerializeToString()
        plain_ev = base.evaluate("metrics", ExportMetricsServiceRequest.FromString(data))
        walked_ev = twin.evaluate("metrics", ExportMetricsServiceRequest.FromString(data), data)
        assert walked_ev.rejected == plain_ev.rejected
        assert json.dumps(walked_ev.records, sort_keys=True, default=str) == json.dumps(
            plain_ev.records, sort_keys=True, default=str
        )
    for data in (raw, bytes(shuffled)):
        plain, walked = both(c, data)
        assert walked[1] == plain[1]
        assert json.dumps(walked[0], sort_keys=True, default=str) == json.dumps(
            plain[0], sort_keys=True, default=str
        )


def test_metrics_met_before_come_back_with_new_times_and_values() -> None:
    # A load generator re-sends the same one-point metrics with new times and values: the layout then
    # recognises each metric whole (labctl.otlp.wire.QuickMetrics) and only its head is read. Values
    # that break a rule, an int value, a new series and a new layout must still come out alike.
    c = load_contract(default_contract_path())
    t0 = 1_700_000_000_000_000_000

    def request(values: list[float | int], shift: int, types: tuple[str, str] = ("input", "output")) -> bytes:
        pts = [
            Point(
                "claude_code.token.usage",
                v,
                {**A, "type": types[i % 2]},
                temporality="cumulative",
                start_ns=t0 + shift,
                time_ns=t0 + shift + 10**9 * (i + 1),
            )
            for i, v in enumerate(values)
        ]
        return one_metric_per_point(metrics_request(pts)).SerializeToString()

    twin = Contract(c.spec)
    sends = [
        request([5.0, 6.0, 7.0], 0),
        request([8.0, 9.0, 10.0], 5),  # the same metrics: every one is known whole now
        request([float("nan"), -1.0, 2**40], 7),  # a bad value, a falling counter... at the same offsets
        request([-2.0, float("inf"), 3.0], 9),
        request([4.0, 4.5, 5.0], 11, ("cacheRead", "cacheCreation")),  # new series: learnt, not matched
        request([5.0, 5.5, 6.0], 13, ("cacheRead", "cacheCreation")),
    ]
    rejected = []
    for raw in sends:
        plain = c.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw))
        walked = twin.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw)
        assert json.dumps(walked.records, sort_keys=True, default=str) == json.dumps(
            plain.records, sort_keys=True, default=str
        )
        rejected.append(walked.rejected)
    assert rejected[2] > 0 and rejected[3] > 0 and rejected[1] == 0
    assert len(twin._quick.table) == 4  # the metrics of both pairs of series were learnt
