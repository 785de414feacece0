"""How the real Claude Code sends `OTEL_EXPORTER_OTLP_HEADERS`, against a module-1 lab with `up --auth`.

Observed with the pinned client ("Headers" in lab/docs/contracts.md): over gRPC it percent-decodes the value
(`Bearer%20T` arrives as `Bearer T`), over HTTP it sends the value as written (`Bearer%20T` arrives
as `Bearer%20T` and the proxy answers 401). A literal space, which `labctl env` prints, works over both.
The playbook's advice rests on this test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from labctl.install.claudecode import resolve
from labctl.modelstub import client
from labctl.state import LabState
from tests.claude.test_real_client import claude_installed  # noqa: F401  (a module fixture, shared)
from tests.conftest import started_lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, claude_installed: None) -> Iterator[LabState]:  # noqa: F811
    with started_lab("module-1", tmp_path_factory.mktemp("auth") / "lab", "--auth") as running:
        yield running


def requests_seen(lab: LabState) -> dict[str, dict[str, int]]:
    stats = requests.get(
        lab.url("proxy", "admin") + "/api/stats",
        headers={"Authorization": f"Bearer {lab.settings['auth_token']}"},
        timeout=10,
    ).json()
    requests_by_signal: dict[str, dict[str, int]] = stats["counters"]["requests"]
    return requests_by_signal


def run_client(lab: LabState, overrides: dict[str, str]) -> None:
    """hello-write with the `labctl env` block (http/protobuf), some OTEL_* variables replaced."""
    prepared = client.prepare(lab, resolve(), "hello-write", [], protocol="http/protobuf")
    prepared.env.update(overrides)
    result = subprocess.run(
        prepared.cmd, env=prepared.env, cwd=prepared.workdir, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"claude exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


def delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {
        signal: {
            k: n - before.get(signal, {}).get(k, 0)
            for k, n in counts.items()
            if n != before.get(signal, {}).get(k, 0)
        }
        for signal, counts in after.items()
    }


def test_a_literal_space_passes_over_http(lab: LabState) -> None:
    token = lab.settings["auth_token"]
    before = requests_seen(lab)
    run_client(lab, {})  # the block as `labctl env` prints it
    assert client.prepare(lab, resolve(), "hello-write", []).env["OTEL_EXPORTER_OTLP_HEADERS"] == (
        f"Authorization=Bearer {token}"
    )
    moved = wait_for(
        "the client's metrics and logs at the proxy",
        lambda: (d := delta(before, requests_seen(lab)))["metrics"] and d["logs"] and d,
        timeout=30,
    )
    assert all("unauthenticated" not in moved[s] for s in ("metrics", "logs")), moved


def test_percent_20_is_decoded_over_grpc_but_sent_as_written_over_http(lab: LabState) -> None:
    token = lab.settings["auth_token"]
    before = requests_seen(lab)
    # One run, two protocols: metrics over gRPC, logs over HTTP, both with the same header value.
    run_client(
        lab,
        {
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{token}",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": lab.url("proxy", "otlp_grpc"),
        },
    )
    moved = wait_for(
        "the client's metrics and logs at the proxy",
        lambda: (d := delta(before, requests_seen(lab)))["metrics"] and d["logs"] and d,
        timeout=30,
    )
    assert "unauthenticated" not in moved["metrics"], f"gRPC: {moved['metrics']}"
    assert moved["metrics"].get("ok"), f"gRPC should be accepted: {moved['metrics']}"
    assert moved["logs"].get("unauthenticated"), f"HTTP should be refused (401): {moved['logs']}"
    assert not moved["logs"].get("ok"), f"HTTP: {moved['logs']}"
