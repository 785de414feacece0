"""The test port pool (LAB_PORT_POOL): ports below the ephemeral range, never repeated across processes
until the pool wraps, busy ports skipped, a bad spec refused with the fix."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.state import PORT_POOL_ENV, find_free_ports


def _pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, span: str) -> str:
    spec = f"{tmp_path}/cursor:{span}"
    monkeypatch.setenv(PORT_POOL_ENV, spec)
    return spec


def _free_run(lo: int, size: int) -> int:
    """The first port of `size` consecutive ports from `lo` that all bind now (the machine may use some).
    The tests look between the suite's own pool (10000-32000) and the kernel's ephemeral range (from
    32768), where neither hands out ports while they run."""
    port = lo
    while port + size <= 32768:
        ok = True
        for p in range(port, port + size):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok, port = False, p + 1
                    break
        if ok:
            return port
    pytest.fail(f"no {size} consecutive free ports between {lo} and 32767: what holds them?")


@pytest.mark.integration
def test_processes_sharing_a_pool_never_get_the_same_port(monkeypatch, tmp_path):
    lo = _free_run(32001, 200)
    spec = _pool(monkeypatch, tmp_path, f"{lo}-{lo + 199}")
    code = "from labctl.state import find_free_ports; print(*find_free_ports(10))"
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), PORT_POOL_ENV: spec}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    got = [int(p) for proc in procs for p in proc.communicate(timeout=60)[0].split()]
    got += find_free_ports(10)
    assert len(got) == 50 and len(set(got)) == 50
    assert all(lo <= p <= lo + 199 for p in got)


def test_a_busy_port_is_skipped_and_the_cursor_wraps(monkeypatch, tmp_path):
    lo = _free_run(32600, 3)
    _pool(monkeypatch, tmp_path, f"{lo}-{lo + 2}")
    with socket.create_server(("127.0.0.1", lo + 1)):
        assert find_free_ports(2) == [lo, lo + 2]
        assert find_free_ports(1) == [lo]  # wrapped, still skipping the busy one
        with pytest.raises(LabError, match="no 3 free ports"):
            find_free_ports(3)


@pytest.mark.parametrize(
    "spec", ["nofile", "/tmp/x:abc", "/tmp/x:30000-20000", ":10000-20000", "/tmp/x:80-90"]
)
def test_a_bad_pool_spec_is_refused_with_the_fix(monkeypatch, spec):
    monkeypatch.setenv(PORT_POOL_ENV, spec)
    with pytest.raises(LabError) as err:
        find_free_ports(1)
    assert PORT_POOL_ENV in str(err.value) and "unset" in err.value.hint
