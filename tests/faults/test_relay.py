"""The fault relay against a real local TCP echo server: pass, black hole (hang), latency."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.checks.probe import tcp_probe
from labctl.state import find_free_ports


@pytest.fixture
def echo_server() -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                data = conn.recv(1024)
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        srv.close()


def _relay(target: int, mode: str, status: Path, latency: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    port = find_free_ports(1)[0]
    proc = subprocess.Popen([sys.executable, "-m", "labctl.faults.relay", "--listen", f"127.0.0.1:{port}",
                             "--target", f"127.0.0.1:{target}", "--mode", mode, "--latency-ms", str(latency),
                             "--status", str(status)])
    deadline = time.monotonic() + 10
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status.exists(), "relay did not start"
    return proc, port


def _roundtrip(port: int, timeout: float = 3.0) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"ping")
        return sock.recv(1024), time.monotonic() - started


@pytest.mark.parametrize("mode", ["pass", "blackhole", "latency"])
def test_relay_modes(echo_server: int, tmp_path: Path, mode: str) -> None:
    proc, port = _relay(echo_server, mode, tmp_path / "s.json", latency=300)
    try:
        if mode == "blackhole":
            assert tcp_probe("127.0.0.1", port, timeout=0.5, payload=b"ping") == "silent"
            assert '"connections": 1' in (tmp_path / "s.json").read_text()
        else:
            data, seconds = _roundtrip(port)
            assert data == b"ping"
            if mode == "latency":
                assert seconds >= 0.6  # held once each way
            else:
                assert seconds < 0.5
    finally:
        proc.terminate()
        proc.wait(5)


def test_closed_port_is_refused() -> None:
    assert tcp_probe("127.0.0.1", find_free_ports(1)[0], timeout=0.5) == "refused"
