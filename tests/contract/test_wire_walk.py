"""Evaluating from the request's wire bytes gives exactly what evaluating the parsed message gives.

The proxy hands the contract the bytes a request arrived in (labctl.contract.wire finds the points);
other encoders lay fields out in other orders, repeat messages, add exemplars or unknown fields: every
such request must come out the same as through the protobuf objects alone.
"""

from __future__ import annotations

import struct
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from labctl.contract import Contract, default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, sample_metrics, session_attrs
from labctl.contract.wire import number_point_regions, varint

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
    assert [len(spans[(0, 0, i)]) for i in range(len(sm.metrics))] == \
        [len(getattr(m, m.WhichOneof("data")).data_points) for m in sm.metrics]
    start, end = spans[(0, 0, 0)][0]
    assert raw[start:end] == sm.metrics[0].sum.data_points[0].SerializeToString()


def test_same_verdicts_and_records_through_either_path() -> None:
    c = load_contract(default_contract_path())
    pts = [Point("claude_code.token.usage", 5, {**A, "type": "input"}),
           Point("claude_code.token.usage", 6.5, {**A, "type": "output"}),
           Point("claude_code.token.usage", float("nan"), {**A, "type": "input"}),
           Point("claude_code.token.usage", -3, {**A, "type": "cacheRead"}),
           Point("claude_code.token.usage", 7, {**A, "type": "bogus"}),
           Point("claude_code.cost.usage", 0.25, {**A, "prompt": "secret"}),
           Point("claude_code.cost.usage", 0.5, {}),
           Point("some.gauge", 3, A, kind="gauge"),
           Point("claude_code.session.count", 1, A, temporality="cumulative"),
           Point("claude_code.token.usage", 8, {**A, "type": "input", "big": "x" * 200}),     # 2-byte length
           Point("claude_code.token.usage", 9, {**A, "type": "input", "huge": "y" * 20_000})]  # 3-byte length
    req = metrics_request(pts)
    req.resource_metrics.add().CopyFrom(metrics_request(pts[:3], resource={"service.name": "other"}).resource_metrics[0])
    for raw in (req.SerializeToString(), attributes_first(req.SerializeToString())):
        for _ in range(2):  # the second pass takes every series from the contract's cache
            plain, walked = both(c, raw)
            assert walked == plain
            assert plain[1] >= 4


def test_exemplars_unknown_fields_and_repeated_messages() -> None:
    c = load_contract(default_contract_path())
    req = metrics_request([Point("claude_code.token.usage", 5, {**A, "type": "input"}),
                           Point("claude_code.token.usage", 9, {**A, "type": "output"})])
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
    assert number_point_regions(b"\x0b\x01") is None            # a group wire type
    assert number_point_regions(b"\x0a\x05\x12\x09abc") is None   # a length past the end
    assert number_point_regions(b"") == {}
    c = load_contract(default_contract_path())
    req = metrics_request([Point("claude_code.token.usage", 5, {**A, "type": "input"})])
    ev = c.evaluate("metrics", req, b"\x0b\x01")  # bytes that are not this request's: message wins
    assert ev.total == 1 and ev.records[0]["value"] == 5
