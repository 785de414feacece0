"""The log writer's fast path (jsonl_wire.py) writes a clean metrics payload from its bytes: its lines
must be byte for byte those of the general path (evaluate, then encode), and any payload it cannot take
must go to that path (None) rather than be written differently."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from labctl.contract import Contract, ContractSpec
from labctl.contract.samples import key_values
from labctl.proxy.inspect.jsonl_fast import JsonlEncoder
from labctl.proxy.inspect.jsonl_wire import WireLines
from labctl.redact import Redactor

T0 = 1_700_000_000_000_000_000
RED = Redactor().with_attributes({"note"})


def _point(data: Any, value: float | int, attrs: dict[str, Any], start: int = T0) -> Any:
    p = data.data_points.add()
    p.start_time_unix_nano = start
    p.time_unix_nano = T0 + 1_500_000
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    p.attributes.extend(key_values(attrs))
    return p


def clean() -> ExportMetricsServiceRequest:
    """Two resources and scopes; one-point and many-point sums (double, int, delta, cumulative), a gauge,
    a redacted and a clipped attribute, a point without attributes."""
    req = ExportMetricsServiceRequest()
    for r in range(2):
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(key_values({"service.name": f"svc-{r}", "token": "abc"}))
        for s in range(2):
            sm = rm.scope_metrics.add()
            sm.scope.name, sm.scope.version = f"scope-{s}", "1.0"
            for i in range(6):  # one point per metric, the load generator's shape
                m = sm.metrics.add(name="claude_code.token.usage", unit="tokens")
                m.sum.is_monotonic, m.sum.aggregation_temporality = True, 1
                _point(m.sum, 10.5 + i, {"session.id": f"s-{i % 3}", "type": "input", "note": "secret"})
            m = sm.metrics.add(name="lines", unit="")
            m.sum.is_monotonic, m.sum.aggregation_temporality = False, 2
            for i in range(4):
                _point(m.sum, -i, {"n": i, "long": "x" * 5000})
            g = sm.metrics.add(name="some.gauge", unit="1")
            _point(g.gauge, 3.25, {})
    return req


def general(encoder: JsonlEncoder, req: Any, payload_id: int, red: Redactor = RED) -> bytes:
    decoder = Contract(ContractSpec(name="log", unknown_metrics="allow", unknown_events="allow"))
    raw = req.SerializeToString()
    return encoder.encode(decoder.evaluate("metrics", req, raw), red, payload_id, {})


def test_a_clean_payload_gives_the_general_paths_bytes() -> None:
    req = clean()
    raw = req.SerializeToString()
    shared = JsonlEncoder()  # the writer's one encoder: both paths fill and read its series cache
    wire = WireLines(shared)  # and its line heads are kept across payloads
    expected = general(JsonlEncoder(), req, 7)
    assert expected.count(b"\n") == 2 * 2 * (6 + 4 + 1)
    assert b"secret" not in expected and b'"long":"' + b"x" * 2048 + "…".encode() in expected
    for _ in range(2):  # cold caches, then every series and time from them
        assert wire.encode(raw, RED, 7) == expected
        assert general(shared, req, 7) == expected
    # The same metrics under another resource and scope: heads kept from before must not be reused.
    req.resource_metrics[0].resource.attributes[0].value.string_value = "svc-other"
    req.resource_metrics[1].scope_metrics[1].scope.version = "2.0"
    changed = general(JsonlEncoder(), req, 8)
    assert wire.encode(req.SerializeToString(), RED, 8) == changed != expected.replace(b":7}", b":8}")
    raw = req.SerializeToString()
    other = Redactor()  # another redaction in force: the cached attributes are not reused
    assert wire.encode(raw, other, 7) == general(JsonlEncoder(), req, 7, other)
    assert wire.encode(raw, RED, 7) == general(JsonlEncoder(), req, 7)
    assert b'"note":"secret"' in general(JsonlEncoder(), req, 7, other)


def _one(kind: str, change: Any) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    m = sm.metrics.add(name="m", unit="1")
    if kind == "histogram":
        h = m.histogram.data_points.add(count=1, sum=1.0, start_time_unix_nano=T0, time_unix_nano=T0 + 1)
        h.bucket_counts.extend([1])
        return req
    m.sum.is_monotonic, m.sum.aggregation_temporality = True, 1
    change(_point(m.sum, 1.0, {"a": "b"}))
    return req


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("not finite", lambda p: setattr(p, "as_double", float("nan"))),
        ("negative on a monotonic sum", lambda p: setattr(p, "as_double", -1.0)),
        ("no start time", lambda p: setattr(p, "start_time_unix_nano", 0)),
        ("exemplar", lambda p: p.exemplars.add(as_double=1.0, time_unix_nano=T0)),
        ("histogram", None),
    ],
)
def test_a_payload_that_is_not_plain_goes_to_the_general_path(kind: str, change: Any) -> None:
    req = _one(kind, change)
    assert general(JsonlEncoder(), req, 1)  # the general path writes it
    assert WireLines(JsonlEncoder()).encode(req.SerializeToString(), RED, 1) is None


def test_metrics_met_before_come_back_with_new_times_and_values() -> None:
    # One-point metrics seen before are recognised whole (all their bytes but the point's times and
    # value): the new times and value must be read, and a value the fast path may not write refused.
    wire = WireLines(JsonlEncoder())
    req = clean()
    wire.encode(req.SerializeToString(), RED, 1)
    assert wire.quick  # learnt: the checks below would prove nothing otherwise

    def resend(value: float | int, which: slice = slice(0, 6)) -> ExportMetricsServiceRequest:
        again = clean()
        for rm in again.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics[which]:
                    p = m.sum.data_points[0]
                    p.start_time_unix_nano, p.time_unix_nano = T0 + 7, T0 + 9_000_000_000
                    if isinstance(value, int):
                        p.as_int = value
                    else:
                        p.as_double = value
        return again

    for value in (99.5, 12, 0.0):
        again = resend(value)
        lines = wire.encode(again.SerializeToString(), RED, 2)
        assert lines == general(JsonlEncoder(), again, 2)
        assert lines is not None and lines.count(b'"time_unix_nano":%d' % (T0 + 9_000_000_000)) == 24
    for value in (float("inf"), -1.0):  # the general path must write these (the metric in the middle
        # of a scope: the first one of each is read the long way, the head's offset guessed from another)
        assert wire.encode(resend(value, slice(3, 4)).SerializeToString(), RED, 3) is None
