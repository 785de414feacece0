"""The JSON Lines log's writer process: lines equal to the inline writer's (test_store.py), and here what
happens when it falls behind, when it dies, and when the proxy dies under it."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from labctl.contract import default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, session_attrs
from labctl.proxy.inspect.logwriter import LogWriterProcess
from labctl.redact import Redactor

A = {**session_attrs(), "model": "claude-sonnet-4-5"}


def request(n: int, value: int = 1) -> bytes:
    return metrics_request(
        [Point("claude_code.token.usage", value, {**A, "type": "input", "n": str(i)}) for i in range(n)]
    ).SerializeToString()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.integration
def test_a_writer_that_falls_behind_leaves_payloads_out_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    writer = LogWriterProcess(path, 64 << 20, max_pending=256 << 10)
    try:
        assert writer.flush()  # the child is up
        os.kill(writer.proc.pid, signal.SIGSTOP)  # a child that gets no CPU: the pipe fills up
        raw = request(800)
        taken = [writer.payload("metrics", seq, raw, {}, Redactor(), 800) for seq in range(1, 11)]
        assert taken[0] and not all(taken)
        dropped = taken.count(False)
        assert writer.dropped_payloads == dropped and writer.dropped_records == 800 * dropped
        os.kill(writer.proc.pid, signal.SIGCONT)
        assert writer.flush()
        seen = {d["payload"] for d in lines(path)}
        assert seen == {seq for seq, ok in enumerate(taken, start=1) if ok}
        assert len(lines(path)) == 800 * taken.count(True)
        assert writer.written_through == max(seen)
    finally:
        os.kill(writer.proc.pid, signal.SIGCONT)
        writer.close()


@pytest.mark.integration
def test_when_the_writer_dies_the_proxy_writes_the_log_itself(
    tmp_path: Path, make_inspector, caplog: pytest.LogCaptureFixture
) -> None:
    cc = load_contract(default_contract_path())
    ins = make_inspector({"inspect": {"console": "off"}, "log": {"writer": "process"}}, tmp_path)
    path = tmp_path / "inspect" / "records.jsonl"
    raw = request(3)
    ins.observe("metrics", cc.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw))
    assert ins.flush_log()
    child = ins.log_writer
    with caplog.at_level(logging.ERROR, logger="labctl.proxy.inspect"):
        child.proc.kill()
        wait_until(lambda: child.failed)
        raw = request(4, value=2)
        ins.observe("metrics", cc.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw))
    assert ins.log_writer is None and ins.log_status()["writer"] == "inline"
    assert "stopped with exit code -9" in caplog.text and "writes" in caplog.text
    got = lines(path)
    assert [d["payload"] for d in got] == [1, 1, 1, 2, 2, 2, 2]
    assert [d["value"] for d in got] == [1, 1, 1, 2, 2, 2, 2]


@pytest.mark.integration
def test_the_writer_ends_with_the_proxy_even_after_kill_9(start_proxy) -> None:
    proxy = start_proxy()
    writers = [
        c
        for c in psutil.Process(proxy.proc.pid).children()
        if "labctl.proxy.inspect.logwriter_child" in " ".join(c.cmdline())
    ]
    assert len(writers) == 1
    proxy.kill(signal.SIGKILL)
    writers[0].wait(10)  # psutil.TimeoutExpired if it outlived the proxy
    assert not writers[0].is_running()
