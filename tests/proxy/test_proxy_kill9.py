"""The proxy killed with SIGKILL and restarted: everything it acknowledged still reaches the upstream."""

from __future__ import annotations

import signal

import pytest
import requests
from proxy_harness import free_port, make_config, wait_for
from proxy_payloads import events, token_usage
from proxy_process import ProxyProcess

PB = {"Content-Type": "application/x-protobuf"}


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_and_restart_replays_everything_acknowledged(tmp_path, start_proxy):
    upstream_port = free_port()
    raw = make_config(
        tmp_path / "data",
        upstream={
            "endpoint": f"http://127.0.0.1:{upstream_port}",
            "protocol": "grpc",
            "retry": {"initial_interval": "50ms", "max_interval": "300ms"},
        },
    )
    proxy = ProxyProcess(raw, tmp_path).start()
    acked = {"metrics": 0, "logs": 0, "traces": 0}
    try:
        with requests.Session() as s:
            for i in range(120):
                signal_name, body, n = (
                    ("metrics", token_usage(10, seq=i), 10) if i % 4 else ("logs", events(3), 3)
                )
                r = s.post(
                    f"{proxy.http}/v1/{signal_name}", data=body.SerializeToString(), headers=PB, timeout=10
                )
                assert r.status_code == 200
                acked[signal_name] += n
        assert proxy.stats()["gauges"]["spooled"] == acked
        proxy.kill(signal.SIGKILL)

        proxy.start()  # same config, same data dir: the spool is recovered
        assert "replaying them in order" in proxy.log_text()
        assert proxy.stats()["gauges"]["spooled"] == acked
        sink = start_proxy(
            listen={"otlp_grpc": f"127.0.0.1:{upstream_port}", "otlp_http": "off"}, contract={"path": ""}
        )
        wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 0, what="the recovered spool to drain")
        assert sink.stats()["counters"]["accepted"] == acked
        assert proxy.stats()["counters"]["forwarded"] == acked
    finally:
        proxy.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_while_forwarding_under_load_loses_no_acknowledged_request(tmp_path, start_proxy):
    """Killed mid-flight with the upstream up: every acknowledged request still arrives (at-least-once;
    a request in flight at the kill may arrive twice, or arrive without its acknowledgement)."""
    sink = start_proxy(contract={"path": ""})
    raw = make_config(
        tmp_path / "data",
        upstream={
            "endpoint": sink.http,
            "protocol": "http/protobuf",
            "retry": {"initial_interval": "50ms", "max_interval": "300ms"},
        },
    )
    proxy = ProxyProcess(raw, tmp_path).start()
    acked = 0
    try:
        with requests.Session() as s:
            for i in range(400):
                if i == 200:
                    proxy.kill(signal.SIGKILL)
                    proxy.start()
                try:
                    r = s.post(
                        f"{proxy.http}/v1/metrics",
                        data=token_usage(5, seq=i).SerializeToString(),
                        headers=PB,
                        timeout=10,
                    )
                except requests.ConnectionError:
                    continue
                if r.status_code == 200:
                    acked += 5
        wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 0, what="the spool to drain")
        arrived = sink.stats()["counters"]["accepted"]["metrics"]
        assert arrived >= acked >= 1990
        # Duplicates are bounded by what can be in flight at the kill: one merged batch.
        assert arrived - acked <= 400 * 5 // 2
    finally:
        proxy.stop()
