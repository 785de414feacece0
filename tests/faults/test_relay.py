"""The fault relay against real local TCP servers: pass, black hole (hang), latency, and the switchable
scrape relay (control API, stalled keep-alive connections, refuse and reopen, 502, mode kept on restart)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labctl.checks.probe import tcp_probe
from labctl.state import find_free_ports


@pytest.fixture
def echo_many() -> Iterator[int]:
    """An echo server that keeps each connection open (like a keep-alive HTTP peer)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    stop = threading.Event()

    def echo(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            while not stop.is_set():
                try:
                    data = conn.recv(1024)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

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
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labctl.faults.relay",
            "--listen",
            f"127.0.0.1:{port}",
            "--target",
            f"127.0.0.1:{target}",
            "--mode",
            mode,
            "--latency-ms",
            str(latency),
            "--status",
            str(status),
        ]
    )
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
@pytest.mark.integration
def test_relay_modes(echo_many: int, tmp_path: Path, mode: str) -> None:
    proc, port = _relay(echo_many, mode, tmp_path / "s.json", latency=300)
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


# --- the switchable relay (the native lab's permanent scrape relay): control API, stall, refuse, resume ---


class Switchable:
    """`python -m labctl.faults.relay --control ...` with two routes, as the native lab runs it."""

    def __init__(self, target: int, tmp: Path, extra: list[str] | None = None) -> None:
        self.ports = find_free_ports(3)
        self.control = f"http://127.0.0.1:{self.ports[2]}"
        self.state = tmp / "mode.json"
        self.cmd = [
            sys.executable,
            "-m",
            "labctl.faults.relay",
            "--control",
            f"127.0.0.1:{self.ports[2]}",
            "--state",
            str(self.state),
            "--http",
            "--route",
            f"127.0.0.1:{self.ports[0]}=127.0.0.1:{target}",
            "--route",
            f"127.0.0.1:{self.ports[1]}=127.0.0.1:{target}",
            *(extra or []),
        ]
        self.proc = self.start()

    def start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.cmd)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                requests.get(self.control + "/status", timeout=0.5)
                return proc
            except requests.RequestException:
                time.sleep(0.05)
        proc.kill()
        pytest.fail("the relay's control port did not answer")

    def mode(self, mode: str, **extra: int) -> requests.Response:
        return requests.put(self.control + "/mode", json={"mode": mode, **extra}, timeout=5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def switchable(echo_many: int, tmp_path: Path) -> Iterator[Switchable]:
    relay = Switchable(echo_many, tmp_path)
    try:
        yield relay
    finally:
        relay.stop()


def _ask(sock: socket.socket, data: bytes, timeout: float) -> bytes:
    sock.settimeout(timeout)
    sock.sendall(data)
    return sock.recv(1024)


@pytest.mark.integration
def test_blackhole_stalls_open_connections_and_a_held_request_goes_through_on_heal(
    switchable: Switchable,
) -> None:
    port = switchable.ports[0]
    with socket.create_connection(("127.0.0.1", port), timeout=2) as keep_alive:
        assert _ask(keep_alive, b"one", 2) == b"one"
        status = switchable.mode("blackhole").json()
        assert status["mode"] == "blackhole" and status["open_connections"] == 1
        with pytest.raises(TimeoutError):
            _ask(keep_alive, b"two", 0.5)  # the reused connection hangs, like a real partition
        # New connections are accepted and never answered.
        assert tcp_probe("127.0.0.1", port, timeout=0.3, payload=b"GET") == "silent"
        with socket.create_connection(("127.0.0.1", switchable.ports[1]), timeout=2) as fresh:
            fresh.sendall(b"held")
            time.sleep(0.2)
            assert switchable.mode("pass").json()["mode"] == "pass"
            fresh.settimeout(2)
            assert fresh.recv(1024) == b"held", "what was sent during the partition goes through on heal"
        keep_alive.settimeout(2)
        assert keep_alive.recv(1024) == b"two", "the stalled connection resumes"


@pytest.mark.integration
def test_refuse_closes_the_listeners_resets_open_connections_and_reopens(switchable: Switchable) -> None:
    port = switchable.ports[0]
    with socket.create_connection(("127.0.0.1", port), timeout=2) as open_conn:
        assert _ask(open_conn, b"x", 2) == b"x"
        status = switchable.mode("refuse").json()
        assert status["mode"] == "refuse" and not any(r["listening"] for r in status["routes"])
        assert tcp_probe("127.0.0.1", port, timeout=0.5) == "refused"
        open_conn.settimeout(2)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):  # noqa: PT012 (either call may see it)
            open_conn.sendall(b"y")
            if not open_conn.recv(1024):
                raise ConnectionResetError("closed")
    assert switchable.mode("pass").status_code == 200
    with socket.create_connection(("127.0.0.1", port), timeout=2) as again:
        assert _ask(again, b"z", 2) == b"z"


@pytest.mark.integration
def test_reopening_a_port_taken_meanwhile_is_a_clear_409(switchable: Switchable) -> None:
    assert switchable.mode("refuse").status_code == 200
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", switchable.ports[1]))
    squatter.listen()
    try:
        resp = switchable.mode("pass")
        assert resp.status_code == 409
        assert (
            f"127.0.0.1:{switchable.ports[1]}" in resp.json()["error"]
            and "took the port" in resp.json()["error"]
        )
        assert resp.json()["mode"] == "refuse", "a failed switch leaves the mode as it was"
    finally:
        squatter.close()
    assert switchable.mode("pass").status_code == 200


@pytest.mark.integration
def test_latency_bad_requests_and_the_mode_survives_a_restart(switchable: Switchable) -> None:
    assert switchable.mode("latency", latency_ms=300).json()["latency_ms"] == 300
    with socket.create_connection(("127.0.0.1", switchable.ports[0]), timeout=3) as sock:
        started = time.monotonic()
        assert _ask(sock, b"slow", 3) == b"slow"
        assert time.monotonic() - started >= 0.55  # held once each way
    assert switchable.mode("sideways").status_code == 400
    assert requests.put(switchable.control + "/mode", data=b"[", timeout=2).status_code == 400
    assert requests.get(switchable.control + "/nothing", timeout=2).status_code == 404
    switchable.mode("refuse")
    switchable.stop()
    switchable.proc = switchable.start()
    status = requests.get(switchable.control + "/status", timeout=2).json()
    assert status["mode"] == "refuse", "a restarted relay keeps the active fault (--state)"
    assert tcp_probe("127.0.0.1", switchable.ports[0], timeout=0.5) == "refused"


@pytest.mark.integration
def test_an_unreachable_target_is_a_502_naming_it(tmp_path: Path) -> None:
    gone = find_free_ports(1)[0]
    relay = Switchable(gone, tmp_path)
    try:
        resp = requests.get(f"http://127.0.0.1:{relay.ports[0]}/metrics", timeout=3)
        assert resp.status_code == 502 and f"cannot connect to 127.0.0.1:{gone}" in resp.text
    finally:
        relay.stop()


@pytest.mark.integration
def test_a_quiet_switch_is_not_reported_in_status_nor_logged(echo_many: int, tmp_path: Path) -> None:
    """A hidden fault (blind challenge) switches quietly: GET /status leaves the mode out until the next
    switch, /status?detail=1 (how labctl verifies) still has it, and the relay's log has no line for it."""
    relay = Switchable(echo_many, tmp_path)
    relay.proc.terminate()
    relay.proc.wait(5)
    log = tmp_path / "relay.log"
    with log.open("wb") as out:
        relay.proc = subprocess.Popen(relay.cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    requests.get(relay.control + "/status", timeout=0.5)
                    break
                except requests.RequestException:
                    time.sleep(0.05)
            assert relay.mode("blackhole", quiet=True).status_code == 200
            plain = requests.get(relay.control + "/status", timeout=2).json()
            assert "mode" not in plain and "latency_ms" not in plain and plain["routes"]
            assert requests.get(relay.control + "/status?detail=1", timeout=2).json()["mode"] == "blackhole"
            assert relay.mode("pass", quiet=True).status_code == 200
            assert requests.get(relay.control + "/status", timeout=2).json()["mode"] == "pass"
            assert relay.mode("refuse").status_code == 200  # a loud switch is reported and logged again
            assert requests.get(relay.control + "/status", timeout=2).json()["mode"] == "refuse"
        finally:
            relay.stop()
    text = log.read_text()
    assert "blackhole" not in text and "-> refuse" in text
