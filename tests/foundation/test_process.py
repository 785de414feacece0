"""The stop protocol on real processes: SIGTERM, then SIGKILL after the timeout; whole process groups;
a recycled pid is never taken for a lab service."""

from __future__ import annotations

import dataclasses
import time

import psutil
import pytest

from labctl.runtimes import process

STUBBORN = "trap '' TERM; while :; do sleep 0.1; done"  # ignores SIGTERM, like a hung service


def spawn(tmp_path, script: str, name: str = "svc") -> process.ProcRecord:
    return process.spawn(
        ["sh", "-c", script],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / f"{name}.log",
        tmp_path,
        tmp_path / f"{name}.pid",
        fingerprint="test",
    )


@pytest.mark.integration
def test_sigterm_then_sigkill_after_the_timeout(tmp_path):
    polite = spawn(tmp_path, "sleep 300", "polite")
    stubborn = spawn(tmp_path, STUBBORN, "stubborn")
    time.sleep(0.3)  # let the trap be installed
    started = time.monotonic()
    killed = process.terminate([polite, stubborn], timeout=1.0)
    took = time.monotonic() - started
    assert killed == [stubborn], "only the process that ignored SIGTERM needed SIGKILL"
    assert not polite.alive() and not stubborn.alive()
    assert 1.0 <= took < 6.0


@pytest.mark.integration
def test_the_whole_process_group_stops(tmp_path):
    parent = spawn(tmp_path, "sleep 300 & wait")
    deadline = time.monotonic() + 5
    children: list[psutil.Process] = []
    while not children and time.monotonic() < deadline:
        children = psutil.Process(parent.pid).children()
        time.sleep(0.05)
    assert children, "the shell started its child"
    process.terminate([parent], timeout=2.0)
    _gone, alive = psutil.wait_procs(children, timeout=3)
    assert not alive, "a child of a service outlived `down`"


@pytest.mark.integration
def test_pid_file_round_trip_and_recycled_pid(tmp_path):
    rec = spawn(tmp_path, "sleep 300")
    try:
        again = process.read_record(tmp_path / "svc.pid")
        assert again == rec and again.alive()
        # Same pid, other start time: that is some other process now, not our service.
        assert not dataclasses.replace(rec, create_time=rec.create_time - 3600).alive()
        assert "starting sh -c sleep 300" in (tmp_path / "svc.log").read_text()
    finally:
        process.terminate([rec], timeout=2.0)
    assert process.read_record(tmp_path / "missing.pid") is None
