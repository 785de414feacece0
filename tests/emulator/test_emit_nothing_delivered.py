"""`labctl emit` whose OTLP exporters delivered nothing exits 4 and shows the last export error whole:
against a port nobody listens on, and against the lab's real proxy refusing a client without the token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.emulator.command import NOTHING_DELIVERED
from labctl.state import free_port
from tests.conftest import labctl_env, run_labctl, started_lab


def _client_env(endpoint: str, protocol: str) -> dict[str, str]:
    return labctl_env(
        CLAUDE_CODE_ENABLE_TELEMETRY="1",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        CLAUDE_CODE_OTEL_SHUTDOWN_TIMEOUT_MS="1000",
        COLUMNS="80",
    )


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_emit_to_a_closed_port_exits_nonzero_with_the_error_whole(protocol: str) -> None:
    port = free_port()
    r = run_labctl(
        "emit",
        "--sessions",
        "1",
        "--duration",
        "2",
        "--seed",
        "1",
        check=False,
        env=_client_env(f"http://127.0.0.1:{port}", protocol),
    )
    assert r.returncode == NOTHING_DELIVERED, r.stdout + r.stderr
    assert "nothing was delivered" in r.stderr
    assert "shutdown can only be called once" not in r.stdout + r.stderr
    # The error is printed whole (not cut with "…"): the refused connection and the port are in it.
    shown = " ".join(r.stdout.split())
    assert "last error:" in shown and str(port) in shown and "refused" in shown.lower(), r.stdout
    assert "…" not in r.stdout


@pytest.mark.integration
def test_emit_refused_by_the_real_proxy_exits_nonzero(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    with started_lab("module-1", state_dir, "--auth") as lab:
        # A client that forgot the token: the proxy answers 401 to every export.
        env = _client_env(lab.url("proxy", "otlp_http"), "http/protobuf")
        r = run_labctl(
            "emit", "--sessions", "1", "--duration", "2", "--seed", "1", "--json", check=False, env=env
        )
        assert r.returncode == NOTHING_DELIVERED, r.stdout + r.stderr
        summary = json.loads(r.stdout)
        assert all(e["items_sent"] == 0 for e in summary["exporters"])
        assert "nothing was delivered" in r.stderr and "401" in r.stderr, r.stderr
        # The same run with the lab's block (token included) delivers and exits 0.
        ok = run_labctl(
            "emit",
            "--from-lab",
            "--sessions",
            "1",
            "--duration",
            "2",
            "--seed",
            "1",
            state_dir=state_dir,
            check=False,
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
