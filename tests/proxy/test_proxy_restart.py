"""POST /api/restart: the proxy stops and runs its own command again in the same process (the same
container under Docker), reading its local settings afresh: unsent data stays in the spool, and settings
that do not load make it exit with its error, as at any start. labctl's `endpoint invalid-url` fault on
Docker relies on exactly that; a proxy inside another program answers 409."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from proxy_harness import RunningProxy, make_config, wait_for
from proxy_payloads import token_usage
from proxy_process import ProxyProcess

from labctl.state import free_port

pytestmark = pytest.mark.integration

PB = {"Content-Type": "application/x-protobuf"}


def _restarted(proxy: ProxyProcess, asked: float) -> dict | None:
    """/api/stats of a process started after `asked` (the old one answers with its longer uptime)."""
    try:
        stats = proxy.stats()
    except OSError:
        return None
    return stats if stats["uptime_s"] <= time.monotonic() - asked + 0.1 else None


def test_restart_runs_again_in_the_same_process_and_reads_its_local_settings(tmp_path: Path) -> None:
    local = tmp_path / "local.json"
    local.write_text("{}")
    nobody = f"http://127.0.0.1:{free_port()}"  # the upstream: nothing listens, so data stays spooled
    raw = make_config(tmp_path / "data", upstream={"endpoint": "${LAB_PROXY_UPSTREAM:-}", "timeout": "1s"})
    proxy = ProxyProcess(raw, tmp_path, env={"LAB_PROXY_UPSTREAM": nobody, "LAB_PROXY_LOCAL_ENV": str(local)})
    proxy.start()
    try:
        sent = requests.post(
            proxy.http + "/v1/metrics", data=token_usage(3).SerializeToString(), headers=PB, timeout=10
        )
        assert sent.status_code == 200, sent.text
        assert proxy.stats()["gauges"]["spool_rows"] == 1
        pid = proxy.proc.pid

        asked = time.monotonic()
        answer = requests.post(proxy.admin + "/api/restart", timeout=10)
        assert (answer.status_code, answer.json()) == (202, {"restarting": True})
        stats = wait_for(lambda: _restarted(proxy, asked), timeout=30, what="the restarted proxy")
        # The same process, started again: the spooled request is still there, to be sent later.
        assert proxy.proc.poll() is None and proxy.proc.pid == pid
        assert stats["gauges"]["spool_rows"] == 1
        assert stats["upstream"]["endpoint"] == nobody
        assert "restart asked (POST /api/restart)" in proxy.log_text()

        # Local settings it cannot start with (a gRPC "scheme"): the new process exits with the error.
        local.write_text(json.dumps({"LAB_PROXY_UPSTREAM": "grpc://127.0.0.1:4317"}))
        assert (
            requests.post(proxy.admin + "/api/restart", params={"quiet": "1"}, timeout=10).status_code == 202
        )
        assert proxy.proc.wait(30) != 0
        log = proxy.log_text()
        assert "'grpc://127.0.0.1:4317' is not an http(s) URL" in log
        assert log.count("restart asked") == 1  # quiet=1: the second request is not logged
    finally:
        proxy.stop()


def test_a_proxy_inside_another_program_does_not_restart(tmp_path: Path) -> None:
    running = RunningProxy(make_config(tmp_path / "data"))
    try:
        assert running.call(running.server.restart()) == (
            409,
            {"error": "this proxy runs inside another program: restart that program instead"},
        )
    finally:
        running.stop()
