"""Retarget the upstream at runtime while a send is in flight (what `labctl break network` / `heal network`
do through PUT / DELETE /api/upstream): the proxy forwards again afterwards and loses nothing it acknowledged.

Regression: closing the old gRPC channel cancelled the in-flight call with asyncio.CancelledError, which
killed the forwarder task silently — after the heal nothing was ever forwarded again."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from proxy_harness import wait_for
from proxy_payloads import events, token_usage

PB = {"Content-Type": "application/x-protobuf"}


class BlackHole:
    """A TCP listener that accepts connections and never answers (a partitioned hop that still SYN-ACKs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)  # keep it open, read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for conn in self.accepted:
            with contextlib.suppress(OSError):
                conn.close()
        self.sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


def _post(session: requests.Session, base: str, i: int) -> tuple[str, int]:
    signal_name, body, n = ("metrics", token_usage(5, seq=i), 5) if i % 3 else ("logs", events(2), 2)
    r = session.post(f"{base}/v1/{signal_name}", data=body.SerializeToString(), headers=PB, timeout=10)
    assert r.status_code == 200, r.text
    return signal_name, n


@pytest.mark.integration
def test_heal_after_retarget_to_a_black_hole_mid_send_forwards_again(start_proxy, black_hole):
    sink = start_proxy(contract={"path": ""})
    # A long timeout keeps the call to the black hole in flight when the upstream is switched back.
    proxy = start_proxy(
        upstream={
            "endpoint": f"http://{sink.grpc}",
            "protocol": "grpc",
            "timeout": "20s",
            "retry": {"initial_interval": "50ms", "max_interval": "300ms"},
        }
    )
    acked = {"metrics": 0, "logs": 0}

    def total(counts: dict[str, int]) -> int:
        return sum(counts.get(k, 0) for k in acked)

    with requests.Session() as s:
        for i in range(10):
            name, n = _post(s, proxy.http, i)
            acked[name] += n
        wait_for(
            lambda: total(proxy.stats()["counters"]["forwarded"]) == total(acked),
            30,
            "the first batches to be forwarded",
        )
        before = total(proxy.stats()["counters"]["forwarded"])

        # break: the upstream becomes a listener that accepts and never answers.
        r = requests.put(
            f"{proxy.admin}/api/upstream",
            json={"endpoint": f"http://127.0.0.1:{black_hole.port}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert proxy.stats()["upstream"]["configured"] is False
        for i in range(10, 25):
            name, n = _post(s, proxy.http, i)
            acked[name] += n
        wait_for(lambda: black_hole.accepted, 15, "the proxy to connect to the black hole")
        time.sleep(0.5)  # the send is now waiting on the black hole: it is in flight
        assert total(proxy.stats()["counters"]["forwarded"]) == before, (
            "nothing can be delivered to a black hole"
        )

        # heal: back to the configured upstream while that send is still pending.
        r = requests.delete(f"{proxy.admin}/api/upstream", timeout=10)
        assert r.status_code == 200, r.text
        assert proxy.stats()["upstream"]["configured"] is True
        wait_for(
            lambda: total(proxy.stats()["counters"]["forwarded"]) > before,
            20,
            "`forwarded` to grow again after DELETE /api/upstream",
        )

        # And the proxy keeps forwarding new data, not just the spooled backlog.
        for i in range(25, 30):
            name, n = _post(s, proxy.http, i)
            acked[name] += n

    wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 0, 30, "the spool to drain")
    accepted = sink.stats()["counters"]["accepted"]
    # At-least-once: everything acknowledged arrives (the cancelled send may be delivered again).
    for signal_name, n in acked.items():
        assert accepted.get(signal_name, 0) >= n, (signal_name, accepted, acked)
    assert total(proxy.stats()["counters"]["forwarded"]) >= total(acked)
    assert proxy.stats()["upstream"]["state"] == "ok"
