"""Through the proxy into the real lab Collector (otelcol-lab, collector-configs/base.yaml)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from proxy_collector import Collector
from proxy_harness import wait_for
from proxy_payloads import events, token_usage

PB = {"Content-Type": "application/x-protobuf"}
pytestmark = [pytest.mark.integration]


@pytest.fixture
def collectors(tmp_path):
    started: list[Collector] = []

    def start(auth_token: str = "", grpc_port: int | None = None, http_port: int | None = None) -> Collector:
        c = Collector(tmp_path / f"collector{len(started)}", auth_token)
        c.workdir.mkdir()
        if grpc_port:
            c.grpc_port, c.http_port = grpc_port, http_port or c.http_port
        started.append(c)
        return c.start()

    try:
        yield start
    finally:
        for c in started:
            c.stop()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_data_through_the_proxy_arrives_in_the_collector(start_proxy, collectors, protocol):
    collector = collectors()
    proxy = start_proxy(upstream={"endpoint": collector.endpoint(protocol), "protocol": protocol})
    session = f"s-{uuid.uuid4().hex[:8]}"
    with requests.Session() as s:
        for i in range(5):
            r = s.post(
                proxy.http + "/v1/metrics",
                data=token_usage(4, session=session, seq=i, value=2.5).SerializeToString(),
                headers=PB,
                timeout=10,
            )
            assert r.status_code == 200
        assert (
            s.post(
                proxy.http + "/v1/logs", data=events(7).SerializeToString(), headers=PB, timeout=10
            ).status_code
            == 200
        )
    # 5 requests x 4 points x 2.5 tokens, accumulated from delta by the Collector's prometheus exporter.
    wait_for(
        lambda: collector.series_value("claude_code_token_usage_tokens_total", session_id=session) == 50.0,
        what="the proxied metric in the Collector's prometheus exporter",
    )
    wait_for(
        lambda: collector.internal_total("otelcol_receiver_accepted_log_records_total") >= 7,
        what="the Collector to accept the proxied events",
    )
    s = proxy.stats()
    assert s["counters"]["forwarded"] == {"metrics": 20, "logs": 7, "traces": 0}
    assert s["upstream"]["state"] == "ok"


def test_collector_auth_failure_is_held_then_delivered_after_the_fix(start_proxy, collectors):
    strict = collectors(auth_token="lab-secret")
    proxy = start_proxy(
        upstream={
            "endpoint": strict.endpoint("grpc"),
            "protocol": "grpc",
            "headers": {"authorization": "Bearer wrong-token"},
            "retry": {"initial_interval": "100ms", "max_interval": "500ms"},
        }
    )
    session = f"s-{uuid.uuid4().hex[:8]}"
    for i in range(3):
        assert (
            requests.post(
                proxy.http + "/v1/metrics",
                data=token_usage(2, session=session, seq=i).SerializeToString(),
                headers=PB,
                timeout=10,
            ).status_code
            == 200
        )
    wait_for(lambda: proxy.stats()["upstream"]["state"] == "auth_failed", what="the 401 to be reported")
    time.sleep(1.0)
    s = proxy.stats()
    assert "UNAUTHENTICATED" in s["upstream"]["last_error"] and "wrong-token" not in str(s)
    assert s["gauges"]["spooled"]["metrics"] == 6 and s["counters"]["dropped"]["metrics"] == {}
    # The fix: the Collector restarts without the auth overlay on the same port.
    port = strict.grpc_port
    strict.stop()
    healed = collectors(grpc_port=port)
    wait_for(
        lambda: healed.series_value("claude_code_token_usage_tokens_total", session_id=session) == 60.0,
        what="the held data in the Collector",
    )
    assert proxy.stats()["counters"]["forwarded"]["metrics"] == 6
