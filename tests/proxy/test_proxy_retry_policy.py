"""How the forwarder treats each upstream answer (OTLP spec): retryable with Retry-After / RetryInfo honoured,
permanent refusals dropped and counted (one bad request never takes good ones with it), partial success.

The upstream here is a small scripted OTLP server (aiohttp / grpc.aio) so each answer can be chosen."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import requests
from aiohttp import web
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from proxy_harness import free_port, wait_for
from proxy_payloads import token_usage

PB = {"Content-Type": "application/x-protobuf"}


class Scripted:
    """An upstream whose answer to each request is decided by `answer(n, request)` (n counts from 0)."""

    def __init__(self, answer: Callable[[int, ExportMetricsServiceRequest], Any], protocol: str) -> None:
        self.answer, self.protocol = answer, protocol
        self.seen: list[tuple[float, ExportMetricsServiceRequest]] = []
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def _record(self, body: bytes) -> tuple[int, ExportMetricsServiceRequest]:
        req = ExportMetricsServiceRequest.FromString(body)
        self.seen.append((time.monotonic(), req))
        return len(self.seen) - 1, req

    async def _start(self) -> None:
        if self.protocol == "grpc":

            async def export(body: bytes, context: Any) -> bytes:
                n, req = self._record(body)
                code, trailers, resp = self.answer(n, req)
                if code is not None:
                    await context.abort(code, "scripted", trailing_metadata=trailers)
                return resp.SerializeToString()

            self.server = grpc.aio.server()
            self.server.add_generic_rpc_handlers(
                [
                    grpc.method_handlers_generic_handler(
                        "opentelemetry.proto.collector.metrics.v1.MetricsService",
                        {"Export": grpc.unary_unary_rpc_method_handler(export)},
                    )
                ]
            )
            self.server.add_insecure_port(f"127.0.0.1:{self.port}")
            await self.server.start()
        else:

            async def handle(request: web.Request) -> web.Response:
                n, req = self._record(await request.read())
                status, headers, resp = self.answer(n, req)
                return web.Response(
                    status=status,
                    headers=headers,
                    body=resp.SerializeToString(),
                    content_type="application/x-protobuf",
                )

            app = web.Application()
            app.router.add_post("/v1/metrics", handle)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def points(self) -> int:
        return sum(
            len(m.sum.data_points)
            for _, r in self.seen
            for rm in r.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        )

    def close(self) -> None:
        stop = self.server.stop(0) if self.protocol == "grpc" else self.runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop, self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def scripted():
    made: list[Scripted] = []

    def make(answer, protocol="http/protobuf") -> Scripted:
        made.append(Scripted(answer, protocol))
        return made[-1]

    yield make
    for s in made:
        s.close()


OK_RESP = ExportMetricsServiceResponse()
FAST = {"initial_interval": "50ms", "max_interval": "200ms"}


def send(proxy, n_requests: int, points: int = 3) -> None:
    for i in range(n_requests):
        r = requests.post(
            proxy.http + "/v1/metrics",
            data=token_usage(points, seq=i).SerializeToString(),
            headers=PB,
            timeout=10,
        )
        assert r.status_code == 200


@pytest.mark.integration
def test_http_429_retry_after_is_honoured(start_proxy, scripted):
    up = scripted(lambda n, _: (429, {"Retry-After": "1"}, OK_RESP) if n == 0 else (200, {}, OK_RESP))
    proxy = start_proxy(
        upstream={"endpoint": f"http://127.0.0.1:{up.port}", "protocol": "http/protobuf", "retry": FAST}
    )
    send(proxy, 1)
    wait_for(lambda: up.points() >= 6, what="the retried request")
    assert up.seen[1][0] - up.seen[0][0] >= 0.95  # waited Retry-After, not the 50 ms backoff
    assert proxy.stats()["counters"]["retries"]["metrics"] == {"http_429": 1}
    assert proxy.stats()["counters"]["forwarded"]["metrics"] == 3


@pytest.mark.integration
def test_http_503_then_ok_backs_off_and_delivers(start_proxy, scripted):
    up = scripted(lambda n, _: (503, {}, OK_RESP) if n < 3 else (200, {}, OK_RESP))
    proxy = start_proxy(
        upstream={"endpoint": f"http://127.0.0.1:{up.port}", "protocol": "http/protobuf", "retry": FAST}
    )
    send(proxy, 1)
    wait_for(lambda: proxy.stats()["counters"]["forwarded"]["metrics"] == 3, what="delivery after 503s")
    assert proxy.stats()["counters"]["retries"]["metrics"] == {"http_503": 3}


def _points(req: ExportMetricsServiceRequest) -> int:
    return sum(
        len(m.sum.data_points) for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    )


def _poisoned(req: ExportMetricsServiceRequest) -> bool:
    return any(
        p.as_double == 666
        for rm in req.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.sum.data_points
    )


@pytest.mark.integration
def test_permanent_400_drops_only_the_bad_request_of_a_merged_batch(start_proxy, scripted):
    gate = threading.Event()  # 503 until all four requests are spooled, so they go out as one merged batch
    whole = threading.Event()  # the merged batch of all four has arrived

    def answer(n: int, req: ExportMetricsServiceRequest):
        if not gate.is_set():
            return 503, {}, OK_RESP
        if not whole.is_set():
            if _points(req) < 12:
                # An attempt that left before the last request was spooled (under load it can arrive
                # after the gate opens): retried, so the next attempt carries all four.
                return 503, {}, OK_RESP
            whole.set()
        if _poisoned(req):
            return 400, {}, status_pb2.Status(code=3, message="bad data")
        return 200, {}, OK_RESP

    up = scripted(answer)
    proxy = start_proxy(
        upstream={"endpoint": f"http://127.0.0.1:{up.port}", "protocol": "http/protobuf", "retry": FAST}
    )
    for i in range(4):
        r = requests.post(
            proxy.http + "/v1/metrics",
            headers=PB,
            timeout=10,
            data=token_usage(3, seq=i, value=666 if i == 2 else 1).SerializeToString(),
        )
        assert r.status_code == 200
    gate.set()
    wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 0, what="the spool to drain")
    c = proxy.stats()["counters"]
    assert c["forwarded"]["metrics"] == 9 and c["dropped"]["metrics"] == {"upstream_permanent": 3}
    last_error = proxy.stats()["upstream"]["last_error"]
    assert "HTTP 400" in last_error and "bad data" in last_error
    merged = [r for _, r in up.seen if _points(r) == 12]
    assert merged  # the four requests did travel as one merged request first


@pytest.mark.integration
def test_upstream_partial_success_is_counted(start_proxy, scripted):
    partial = ExportMetricsServiceResponse()
    partial.partial_success.rejected_data_points = 2
    partial.partial_success.error_message = "2 points too old"
    up = scripted(lambda n, _: (200, {}, partial))
    proxy = start_proxy(upstream={"endpoint": f"http://127.0.0.1:{up.port}", "protocol": "http/protobuf"})
    send(proxy, 1, points=5)
    wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 0, what="delivery")
    c = proxy.stats()["counters"]
    assert c["forwarded"]["metrics"] == 3 and c["dropped"]["metrics"] == {"upstream_partial": 2}


def _retry_info(seconds: int) -> tuple[tuple[str, bytes], ...]:
    info = error_details_pb2.RetryInfo()
    info.retry_delay.seconds = seconds
    st = status_pb2.Status(code=8, message="slow down")
    st.details.add().Pack(info)
    return (("grpc-status-details-bin", st.SerializeToString()),)


@pytest.mark.integration
def test_grpc_resource_exhausted_with_retry_info_is_retried_after_the_delay(start_proxy, scripted):
    up = scripted(
        lambda n, _: (
            (grpc.StatusCode.RESOURCE_EXHAUSTED, _retry_info(1), None) if n == 0 else (None, None, OK_RESP)
        ),
        protocol="grpc",
    )
    proxy = start_proxy(
        upstream={"endpoint": f"http://127.0.0.1:{up.port}", "protocol": "grpc", "retry": FAST}
    )
    send(proxy, 1)
    wait_for(lambda: proxy.stats()["counters"]["forwarded"]["metrics"] == 3, what="delivery after RetryInfo")
    assert up.seen[1][0] - up.seen[0][0] >= 0.95


@pytest.mark.integration
def test_grpc_resource_exhausted_without_retry_info_is_permanent(start_proxy, scripted):
    up = scripted(lambda n, _: (grpc.StatusCode.RESOURCE_EXHAUSTED, (), None), protocol="grpc")
    proxy = start_proxy(
        upstream={"endpoint": f"http://127.0.0.1:{up.port}", "protocol": "grpc", "retry": FAST}
    )
    send(proxy, 1)
    wait_for(lambda: proxy.stats()["counters"]["dropped"]["metrics"], what="the permanent refusal")
    assert proxy.stats()["counters"]["dropped"]["metrics"] == {"upstream_permanent": 3}
    assert len(up.seen) == 1


@pytest.mark.integration
def test_grpc_unavailable_is_retried(start_proxy, scripted):
    up = scripted(
        lambda n, _: (grpc.StatusCode.UNAVAILABLE, (), None) if n < 2 else (None, None, OK_RESP),
        protocol="grpc",
    )
    proxy = start_proxy(
        upstream={"endpoint": f"http://127.0.0.1:{up.port}", "protocol": "grpc", "retry": FAST}
    )
    send(proxy, 1)
    wait_for(
        lambda: proxy.stats()["counters"]["forwarded"]["metrics"] == 3, what="delivery after UNAVAILABLE"
    )
    assert proxy.stats()["counters"]["retries"]["metrics"] == {"grpc_unavailable": 2}
