"""Forwarding that loses nothing: upstream outages under load and auth failures, into a second real proxy.

The upstream is another proxy instance with no upstream of its own (the module-1 sink), so what
reaches it is counted by its own receivers.
"""

from __future__ import annotations

import threading
import time
from typing import Self

import pytest
import requests
from proxy_harness import free_port, wait_for
from proxy_payloads import events, token_usage

PB = {"Content-Type": "application/x-protobuf"}
FAST_RETRY = {"initial_interval": "50ms", "max_interval": "300ms"}


def upstream_url(protocol: str, port: int) -> str:
    return f"http://127.0.0.1:{port}"


def sink_listen(protocol: str, port: int) -> dict[str, str]:
    # The sink listens on the fixed port for the protocol under test; its other receiver is off.
    if protocol == "grpc":
        return {"otlp_grpc": f"127.0.0.1:{port}", "otlp_http": "off"}
    return {"otlp_http": f"127.0.0.1:{port}", "otlp_grpc": "off"}


class Load:
    """A client thread sending metrics and events; counts what the proxy acknowledged (200)."""

    def __init__(self, url: str, requests_n: int, points: int = 10) -> None:
        self.url, self.n, self.points = url, requests_n, points
        self.acked = {"metrics": 0, "logs": 0}
        self.refused = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with requests.Session() as s:
            for i in range(self.n):
                signal, body, n = (
                    ("metrics", token_usage(self.points, seq=i), self.points)
                    if i % 3
                    else ("logs", events(self.points // 2), self.points // 2)
                )
                r = s.post(f"{self.url}/v1/{signal}", data=body.SerializeToString(), headers=PB, timeout=10)
                if r.status_code == 200:
                    self.acked[signal] += n
                else:
                    self.refused += 1
                time.sleep(0.002)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(60)


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_upstream_down_under_load_then_back_loses_nothing(start_proxy, protocol):
    port = free_port()
    proxy = start_proxy(
        upstream={"endpoint": upstream_url(protocol, port), "protocol": protocol, "retry": FAST_RETRY}
    )
    with Load(proxy.http, 150) as load:
        wait_for(
            lambda: proxy.stats()["upstream"]["state"] == "retrying", what="forwarder to notice the outage"
        )
        time.sleep(0.3)
        spooled = proxy.stats()["gauges"]["spooled"]
        assert spooled["metrics"] > 0
        sink = start_proxy(listen=sink_listen(protocol, port), contract={"path": ""})
    assert load.refused == 0
    wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 0, what="the spool to drain")
    s, up = proxy.stats(), sink.stats()
    assert s["counters"]["accepted"] == {**load.acked, "traces": 0}
    assert s["counters"]["forwarded"] == {**load.acked, "traces": 0}
    assert up["counters"]["accepted"] == {**load.acked, "traces": 0}
    assert s["counters"]["dropped"] == {"metrics": {}, "logs": {}, "traces": {}}
    assert s["upstream"]["state"] == "ok"
    assert sum(n for by_reason in s["counters"]["retries"].values() for n in by_reason.values()) > 0


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_upstream_auth_failure_holds_data_until_healed(start_proxy, protocol):
    port = free_port()
    proxy = start_proxy(
        upstream={
            "endpoint": upstream_url(protocol, port),
            "protocol": protocol,
            "headers": "authorization=Bearer%20old-token",
            "retry": FAST_RETRY,
        }
    )
    strict = start_proxy(
        listen=sink_listen(protocol, port), contract={"path": ""}, auth={"bearer_token": "new-token"}
    )
    with Load(proxy.http, 60) as load:
        pass
    state = wait_for(lambda: proxy.stats()["upstream"], what="upstream state")
    wait_for(lambda: proxy.stats()["upstream"]["state"] == "auth_failed", what="auth failure to be reported")
    time.sleep(0.5)  # several refused attempts: nothing may be dropped meanwhile
    s = proxy.stats()
    assert s["counters"]["forwarded"]["metrics"] == 0 and s["counters"]["dropped"]["metrics"] == {}
    assert s["gauges"]["spooled"] == {**load.acked, "traces": 0}
    assert "old-token" not in str(s) and (
        "401" in s["upstream"]["last_error"] or "UNAUTHENTICATED" in s["upstream"]["last_error"]
    )
    assert strict.stats()["counters"]["accepted"]["metrics"] == 0
    # Heal: the upstream now accepts the proxy's credentials (restarted without the token check).
    strict.stop()
    healed = start_proxy(listen=sink_listen(protocol, port), contract={"path": ""})
    wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 0, what="the held data to be delivered")
    assert healed.stats()["counters"]["accepted"] == {**load.acked, "traces": 0}
    assert proxy.stats()["upstream"]["state"] == "ok"
    assert state is not None


@pytest.mark.integration
def test_drop_oldest_overflow_is_counted_and_visible(start_proxy):
    proxy = start_proxy(
        upstream={"endpoint": "http://127.0.0.1:9", "retry": {"initial_interval": "5s"}},
        spool={"max_bytes": 5000, "overflow": "drop_oldest"},
    )
    body = token_usage(20).SerializeToString()
    for _ in range(10):
        assert requests.post(proxy.http + "/v1/metrics", data=body, headers=PB, timeout=5).status_code == 200
    s = proxy.stats()
    dropped = s["counters"]["dropped"]["metrics"]["spool_overflow"]
    assert dropped > 0 and dropped % 20 == 0
    assert s["gauges"]["spooled"]["metrics"] + dropped == 200
    assert s["gauges"]["spool_bytes"] <= 5000 + len(body)
    assert s["gauges"]["spool_full"] is True and s["gauges"]["overflow_policy"] == "drop_oldest"
