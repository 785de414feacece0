"""Every OTLP response path of the receivers, over HTTP (protobuf and JSON) and gRPC, with exact counts."""

from __future__ import annotations

import gzip
import json

import grpc
import pytest
import requests
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from proxy_payloads import events, spans, token_usage

from labctl.otlp.codec import to_otlp_json

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(url, data=body, headers=headers, timeout=10)


def status_of(resp: requests.Response) -> status_pb2.Status:
    st = status_pb2.Status()
    if resp.headers["Content-Type"].startswith("application/json"):
        json_format.Parse(resp.text, st)
    else:
        st.ParseFromString(resp.content)
    return st


@pytest.mark.integration
def test_full_success_is_200_with_empty_response_in_the_request_encoding(start_proxy):
    proxy = start_proxy()
    r = post(proxy.http + "/v1/metrics", token_usage(8).SerializeToString(), PB)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-protobuf"
    resp = ExportMetricsServiceResponse.FromString(r.content)
    assert not resp.HasField("partial_success")
    r = post(proxy.http + "/v1/logs", json.dumps(to_otlp_json(events(3))).encode(), JS)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {}
    r = post(proxy.http + "/v1/traces", spans(2).SerializeToString(), PB)
    assert r.status_code == 200 and not ExportTraceServiceResponse.FromString(r.content).HasField(
        "partial_success"
    )
    c = proxy.stats()["counters"]
    assert (c["received"], c["accepted"]) == ({"metrics": 8, "logs": 3, "traces": 2},) * 2


@pytest.mark.integration
def test_enforce_mode_partial_success_counts_exact_over_protobuf_and_json(start_proxy):
    proxy = start_proxy(contract={"mode": "enforce"})
    r = post(proxy.http + "/v1/metrics", token_usage(7, bad=3).SerializeToString(), PB)
    assert r.status_code == 200
    ps = ExportMetricsServiceResponse.FromString(r.content).partial_success
    assert ps.rejected_data_points == 3
    assert "bogus-type" in ps.error_message and "3 of 10" in ps.error_message
    r = post(proxy.http + "/v1/metrics", json.dumps(to_otlp_json(token_usage(2, bad=5))).encode(), JS)
    assert r.status_code == 200
    body = r.json()["partialSuccess"]
    assert int(body["rejectedDataPoints"]) == 5 and "violate" in body["errorMessage"]
    c = proxy.stats()["counters"]
    assert c["received"]["metrics"] == 17
    assert c["accepted"]["metrics"] == 9
    assert c["rejected"]["metrics"] == {"contract": 8}
    assert c["requests"]["metrics"] == {"partial": 2}


@pytest.mark.integration
def test_observe_mode_accepts_everything_and_warns(start_proxy):
    proxy = start_proxy()
    r = post(proxy.http + "/v1/metrics", token_usage(4, bad=2).SerializeToString(), PB)
    ps = ExportMetricsServiceResponse.FromString(r.content).partial_success
    assert r.status_code == 200 and ps.rejected_data_points == 0
    assert ps.error_message.startswith("observe mode: 2 data points violate the contract")
    assert proxy.stats()["counters"]["accepted"]["metrics"] == 6


@pytest.mark.parametrize(
    ("body", "headers", "needle"),
    [
        (b"\x0a\xff\xff\xff", PB, "not a valid protobuf"),
        (b"{not json", JS, "not valid JSON"),
        (b"[1, 2]", JS, "must be an object"),
        (
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": 5, "sum": {"dataPoints": "x"}}]}]}]}',
            JS,
            "not a valid OTLP/JSON",
        ),
        (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}', JS, "not a hex id"),
        (b"this is not gzip at all", {**PB, "Content-Encoding": "gzip"}, "not valid gzip"),
        (
            gzip.compress(token_usage(3).SerializeToString())[:-6],
            {**PB, "Content-Encoding": "gzip"},
            "truncated",
        ),
    ],
)
@pytest.mark.integration
def test_undecodable_bodies_get_400_with_a_status_in_the_request_encoding(start_proxy, body, headers, needle):
    proxy = start_proxy()
    path = "/v1/traces" if b"traceId" in body else "/v1/metrics"
    r = post(proxy.http + path, body, headers)
    assert r.status_code == 400
    assert r.headers["Content-Type"].split(";")[0] == headers["Content-Type"]
    st = status_of(r)
    assert st.code == 3 and needle in st.message


@pytest.mark.integration
def test_unsupported_content_type_is_415(start_proxy):
    proxy = start_proxy()
    for ct in ("text/plain", "application/grpc", ""):
        r = post(proxy.http + "/v1/metrics", b"x", {"Content-Type": ct} if ct else {})
        assert r.status_code == 415
        assert "application/x-protobuf or application/json" in status_of(r).message
    r = post(proxy.http + "/v1/metrics", token_usage(1).SerializeToString(), {**PB, "Content-Encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding" in status_of(r).message


@pytest.mark.integration
def test_too_large_is_413_raw_and_inflated(start_proxy):
    proxy = start_proxy(limits={"max_request_bytes": "64KiB"})
    r = post(proxy.http + "/v1/metrics", b"\0" * (70 * 1024), PB)
    assert r.status_code == 413 and "limit" in status_of(r).message
    # Chunked upload (no Content-Length), as the JS exporter sends.
    r = requests.post(
        proxy.http + "/v1/metrics", data=iter([b"\0" * 40000, b"\0" * 40000]), headers=PB, timeout=10
    )
    assert r.status_code == 413
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))  # 10 KiB on the wire, 10 MiB inflated
    assert len(bomb) < 64 * 1024
    r = post(proxy.http + "/v1/metrics", bomb, {**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 413 and "inflates" in status_of(r).message
    ok = gzip.compress(token_usage(5).SerializeToString())
    r = post(proxy.http + "/v1/metrics", ok, {**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 200


@pytest.mark.integration
def test_bearer_token_required_when_configured(start_proxy):
    proxy = start_proxy(auth={"bearer_token": "s3cret-token"})
    body = token_usage(2).SerializeToString()
    for headers in (PB, {**PB, "Authorization": "Bearer wrong"}, {**PB, "Authorization": "s3cret-token"}):
        r = post(proxy.http + "/v1/metrics", body, headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert status_of(r).code == 16 and "s3cret-token" not in r.text
    r = post(proxy.http + "/v1/metrics", body, {**PB, "Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200
    stub = grpc.insecure_channel(proxy.grpc).unary_unary(
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    )
    with pytest.raises(grpc.RpcError) as err:
        stub(body, timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stub(body, timeout=5, metadata=(("authorization", "Bearer s3cret-token"),)) == b""
    c = proxy.stats()["counters"]
    assert c["requests"]["metrics"] == {"ok": 2, "unauthenticated": 4}
    assert c["accepted"]["metrics"] == 4


def _spool_full_proxy(start_proxy):
    # Upstream on a closed port: everything stays in the spool, which fills after a few requests.
    return start_proxy(
        upstream={"endpoint": "http://127.0.0.1:9", "retry": {"initial_interval": "5s"}},
        spool={"max_bytes": 4000},
        limits={"retry_after": "7s"},
    )


@pytest.mark.integration
def test_full_spool_is_429_with_retry_after(start_proxy):
    proxy = _spool_full_proxy(start_proxy)
    body = token_usage(20).SerializeToString()
    codes = [post(proxy.http + "/v1/metrics", body, PB) for _ in range(6)]
    accepted = [r for r in codes if r.status_code == 200]
    busy = [r for r in codes if r.status_code == 429]
    assert accepted and busy and len(accepted) + len(busy) == 6
    r = busy[0]
    assert r.headers["Retry-After"] == "7"
    st = status_of(r)
    info = error_details_pb2.RetryInfo()
    assert st.code == 8 and st.details[0].Unpack(info) and info.retry_delay.seconds == 7
    s = proxy.stats()
    assert s["gauges"]["spool_full"] is True
    assert s["gauges"]["spooled"]["metrics"] == 20 * len(accepted)
    assert s["counters"]["rejected"]["metrics"] == {"spool_full": 20 * len(busy)}


@pytest.mark.integration
def test_full_spool_over_grpc_is_resource_exhausted_with_retry_info(start_proxy, grpc_front):
    proxy = _spool_full_proxy(start_proxy)
    body = token_usage(20).SerializeToString()
    stub = grpc.insecure_channel(proxy.grpc).unary_unary(
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    )
    errors = []
    for _ in range(6):
        try:
            stub(body, timeout=5)
        except grpc.RpcError as exc:
            errors.append(exc)
    assert errors and all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in errors)
    details = dict(errors[0].trailing_metadata())["grpc-status-details-bin"]
    st = status_pb2.Status.FromString(details)
    info = error_details_pb2.RetryInfo()
    assert st.details[0].Unpack(info) and info.retry_delay.seconds == 7


@pytest.mark.integration
def test_grpc_invalid_argument_and_partial_success(start_proxy):
    proxy = start_proxy(contract={"mode": "enforce"})
    channel = grpc.insecure_channel(proxy.grpc)
    metrics = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
    with pytest.raises(grpc.RpcError) as err:
        metrics(b"\x0a\xff\xff", timeout=5)
    assert (
        err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid protobuf" in err.value.details()
    )
    resp = ExportMetricsServiceResponse.FromString(
        metrics(token_usage(6, bad=4).SerializeToString(), timeout=5)
    )
    assert resp.partial_success.rejected_data_points == 4
    logs = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
    assert not ExportLogsServiceResponse.FromString(logs(events(3).SerializeToString(), timeout=5)).HasField(
        "partial_success"
    )
    c = proxy.stats()["counters"]
    assert c["accepted"] == {"metrics": 6, "logs": 3, "traces": 0}
    assert c["requests"]["metrics"] == {"bad_protobuf": 1, "partial": 1}


@pytest.mark.integration
def test_port_in_use_is_a_clear_error(start_proxy):
    from labctl.errors import LabError

    first = start_proxy()
    for taken in ({"otlp_http": first.http.removeprefix("http://")}, {"otlp_grpc": first.grpc}):
        with pytest.raises(LabError) as err:
            start_proxy(listen=taken)
        assert "cannot listen" in err.value.message and "LAB_PROXY_OTLP" in (err.value.hint or "")


@pytest.mark.integration
def test_client_vanishing_mid_body_is_counted_and_harmless(start_proxy):
    import socket

    proxy = start_proxy()
    port = int(proxy.http.rsplit(":", 1)[1])
    for framing in (b"Content-Length: 1000\r\n\r\n0123456789", b"Transfer-Encoding: chunked\r\n\r\n5\r\nabc"):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n" + framing
            )
            s.shutdown(socket.SHUT_WR)
            s.recv(100)
    r = post(proxy.http + "/v1/metrics", token_usage(1).SerializeToString(), PB)
    assert r.status_code == 200
    import time

    deadline = time.monotonic() + 5
    while proxy.stats()["counters"]["requests"]["metrics"].get("client_disconnected") != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert proxy.stats()["counters"]["accepted"]["metrics"] == 1


@pytest.mark.integration
def test_each_http_payload_records_its_own_headers(start_proxy):
    # The receiver remembers a client's safe headers by their raw bytes: a changed header is another entry.
    proxy = start_proxy()
    body = token_usage(2).SerializeToString()
    for tenant in ("a", "b", "a"):
        headers = {**PB, "X-Tenant": tenant, "Authorization": "Bearer s3cret"}
        assert post(proxy.http + "/v1/metrics", body, headers).status_code == 200
    got = [requests.get(f"{proxy.admin}/api/payloads/{i}", timeout=10).json()["headers"] for i in (1, 2, 3)]
    assert [h["x-tenant"] for h in got] == ["a", "b", "a"]
    assert all(h["authorization"] == "[REDACTED]" for h in got)
