"""Fuzzing the proxy's input side with hypothesis: malformed protobuf and JSON, broken and oversized gzip,
gzip bombs, NaN/Inf, negative counters, huge attribute values and counts. Nothing may crash, memory stays
bounded, and every bad request gets a clear error."""

from __future__ import annotations

import gzip
import json
import math
import zlib

import psutil
import pytest
import requests
from fuzz_budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from proxy_harness import CONTRACT
from proxy_payloads import kv, token_usage

from labctl.contract import load_contract
from labctl.otlp import codec
from labctl.otlp.codec import CodecError
from labctl.otlp.signals import SIGNALS
from labctl.proxy.ingest import ContractHolder, Ingest
from labctl.proxy.spool import Spool
from labctl.proxy.stats import Stats

FAST = settings(max_examples=examples(600), deadline=None, suppress_health_check=list(HealthCheck))
LIMIT = 256 * 1024


@FAST
@given(signal=st.sampled_from(sorted(SIGNALS)), body=st.binary(max_size=2048))
def test_random_bytes_as_protobuf_decode_or_fail_clearly(signal, body):
    try:
        msg = codec.decode(SIGNALS[signal], body, codec.PROTOBUF)
    except CodecError as exc:
        assert exc.status == 400 and "not a valid protobuf" in exc.message
    else:
        SIGNALS[signal].count(msg)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "resourceMetrics",
                    "scopeMetrics",
                    "metrics",
                    "name",
                    "sum",
                    "gauge",
                    "dataPoints",
                    "asInt",
                    "asDouble",
                    "attributes",
                    "key",
                    "value",
                    "stringValue",
                    "intValue",
                    "traceId",
                    "spanId",
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "resourceLogs",
                    "scopeLogs",
                    "logRecords",
                    "timeUnixNano",
                    "aggregationTemporality",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=30,
)


@FAST
@given(signal=st.sampled_from(sorted(SIGNALS)), tree=_json)
def test_random_json_decodes_or_fails_clearly(signal, tree):
    body = json.dumps(tree).encode()
    try:
        msg = codec.decode(SIGNALS[signal], body, codec.JSON)
    except CodecError as exc:
        assert exc.status == 400 and exc.message
    else:
        SIGNALS[signal].count(msg)


@FAST
@given(body=st.binary(max_size=4096), cut=st.integers(min_value=0, max_value=4096))
def test_gzip_truncated_or_corrupt_never_escapes(body, cut):
    packed = gzip.compress(body)
    for candidate in (packed[:cut], packed, body):
        try:
            out = codec.inflate(candidate, "gzip", LIMIT)
        except CodecError as exc:
            assert exc.status in (400, 413)
        else:
            assert out == body


def test_gzip_bomb_is_refused_without_inflating_it():
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    packed = b"".join(bomb.compress(chunk) for _ in range(256)) + bomb.flush()  # 256 MiB inflated
    assert len(packed) < 512 * 1024
    rss = psutil.Process().memory_info().rss
    for _ in range(5):
        with pytest.raises(CodecError) as err:
            codec.inflate(packed, "gzip", LIMIT)
        assert err.value.status == 413
    assert psutil.Process().memory_info().rss - rss < 32 * 1024 * 1024


_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(-1.0),
    st.just(math.inf),
    st.just(-math.inf),
    st.just(math.nan),
)


@st.composite
def hostile_metrics(draw):
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    for i in range(draw(st.integers(0, 40))):
        rm.resource.attributes.append(kv(f"k{i}", draw(st.text(max_size=50))))
    sm = rm.scope_metrics.add()
    for _ in range(draw(st.integers(1, 3))):
        m = sm.metrics.add()
        m.name = draw(
            st.sampled_from(
                [
                    "claude_code.token.usage",
                    "claude_code.cost.usage",
                    "claude_code.session.count",
                    "x" * 300,
                    "",
                ]
            )
        )
        kind = draw(st.sampled_from(["sum", "gauge", "histogram"]))
        data = getattr(m, kind)
        if kind == "sum":
            data.is_monotonic = draw(st.booleans())
            data.aggregation_temporality = draw(st.integers(0, 3))
        for _ in range(draw(st.integers(0, 5))):
            p = data.data_points.add()
            if kind == "histogram":
                p.count = draw(st.integers(0, 2**64 - 1))
                p.sum = draw(_number)
                p.bucket_counts.extend(draw(st.lists(st.integers(0, 2**64 - 1), max_size=5)))
                p.explicit_bounds.extend(draw(st.lists(_number, max_size=4)))
            elif draw(st.booleans()):
                p.as_double = draw(_number)
            else:
                p.as_int = draw(st.integers(-(2**63), 2**63 - 1))
            p.time_unix_nano = draw(st.integers(0, 2**64 - 1))
            for j in range(draw(st.integers(0, 12))):
                huge = draw(st.integers(0, 15)) == 0
                p.attributes.append(
                    kv(
                        draw(st.sampled_from(["session.id", "type", "model", f"a{j}"])),
                        "v" * 100_000 if huge else draw(st.text(max_size=20)),
                    )
                )
    return req


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    stats = Stats()
    spool = Spool(
        tmp_path_factory.mktemp("fuzz") / "spool.sqlite",
        max_bytes=2 * 1024 * 1024,
        memory_bytes=1024 * 1024,
        overflow="drop_oldest",
        sync="normal",
        stats=stats,
    )
    holder = ContractHolder(CONTRACT, load_contract)
    yield Ingest(mode="enforce", stats=stats, spool=spool, contract=holder, inspector=None, retry_after=1)
    spool.close()


@settings(max_examples=examples(500), deadline=None, suppress_health_check=list(HealthCheck))
@given(req=hostile_metrics())
def test_hostile_values_go_through_contract_and_spool_without_crashing(ingest, req):
    n = SIGNALS["metrics"].count(req)
    before = dict(ingest.stats.accepted), dict(ingest.stats.rejected)
    answer = ingest.handle(SIGNALS["metrics"], req, req.SerializeToString(), {"protocol": "test"})
    assert 0 <= answer.rejected <= n
    assert ingest.stats.accepted["metrics"] - before[0].get("metrics", 0) == n - answer.rejected
    assert bool(answer.rejected) == bool(answer.message)


def test_huge_attribute_counts_and_values(ingest):
    req = token_usage(2)
    point = req.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
    for i in range(20_000):
        point.attributes.append(kv(f"attr.{i}", "x" * 50))
    point.attributes.append(kv("huge", "y" * 2_000_000))
    answer = ingest.handle(SIGNALS["metrics"], req, req.SerializeToString(), {"protocol": "test"})
    assert answer.rejected <= 2


@pytest.mark.integration
def test_live_server_answers_every_hostile_request_and_stays_small(start_proxy):
    proxy = start_proxy(limits={"max_request_bytes": "1MiB"})
    rss = psutil.Process().memory_info().rss
    bomb = gzip.compress(b"\0" * (64 << 20))
    cases = [
        (b"\xff" * 100, {"Content-Type": "application/x-protobuf"}, {400}),
        (b'{"resourceMetrics": 5}', {"Content-Type": "application/json"}, {400}),
        (bomb, {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, {413}),
        (
            gzip.compress(b"x" * 100)[:20],
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            {400},
        ),
        (b"\0" * (2 << 20), {"Content-Type": "application/x-protobuf"}, {413}),
        (
            token_usage(3, value=math.nan).SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
            {200},
        ),
        (token_usage(3, value=-5).SerializeToString(), {"Content-Type": "application/x-protobuf"}, {200}),
        (b"{}", {"Content-Type": "application/yaml"}, {415}),
    ]
    with requests.Session() as s:
        for _ in range(15):
            for body, headers, codes in cases:
                r = s.post(proxy.http + "/v1/metrics", data=body, headers=headers, timeout=10)
                assert r.status_code in codes, (r.status_code, r.text[:200])
                if r.status_code != 200:
                    assert r.content  # a google.rpc.Status saying what was wrong
    assert psutil.Process().memory_info().rss - rss < 150 * 1024 * 1024
    assert proxy.stats()["counters"]["accepted"]["metrics"] == 15 * 6
