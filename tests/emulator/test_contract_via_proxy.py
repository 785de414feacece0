"""The emulator's output checked by the lab's own logging proxy against the Claude Code contract.

The proxy (`python -m labctl proxy serve`, lab/contracts/claude-code.yaml) decodes every request, evaluates each
data point, event and span against the contract (span kinds and parents included, with traces on as
CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 and OTEL_TRACES_EXPORTER=otlp switch them on) and reports violations
on /api/violations; a student sees the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.matrix.receivers import Proxy

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def api(p: Proxy, path: str) -> Any:
    return requests.get(f"http://127.0.0.1:{p.admin_port}{path}", timeout=5).json()


def test_emulator_output_satisfies_the_contract_over_every_protocol(tmp_path: Path) -> None:
    p = Proxy(tmp_path / "proxy").start()
    try:
        for n, protocol in enumerate(("grpc", "http/protobuf", "http/json"), 1):
            endpoint = f"http://127.0.0.1:{p.grpc_port if protocol == 'grpc' else p.http_port}"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CLAUDE_CODE_"))}
            env.update(
                CLAUDE_CODE_ENABLE_TELEMETRY="1",
                OTEL_METRICS_EXPORTER="otlp",
                OTEL_LOGS_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
                OTEL_METRIC_EXPORT_INTERVAL="1000",
                OTEL_LOGS_EXPORT_INTERVAL="500",
                OTEL_RESOURCE_ATTRIBUTES="team=blue",
                CLAUDE_CODE_ENHANCED_TELEMETRY_BETA="1",
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_TRACES_EXPORT_INTERVAL="500",
            )
            before = api(p, "/api/overview")["items"]
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "labctl.emulator",
                    "emit",
                    "--sessions",
                    "3",
                    "--duration",
                    "3",
                    "--rate",
                    "120",
                    "--error-rate",
                    "0.25",
                    "--seed",
                    str(13 + n),
                    "--marker",
                    f"contract-{n}",
                    "--quiet",
                ],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            overview = api(p, "/api/overview")
            items = overview["items"]
            for signal in ("metrics", "logs", "traces"):
                assert items.get(f"{signal}:ok", 0) > before.get(f"{signal}:ok", 0), (protocol, overview)
                assert items.get(f"{signal}:violation", 0) == 0, (protocol, api(p, "/api/violations"))
            assert api(p, "/api/violations")["violations"] == []
            assert overview["sessions"] == 3 * n  # grouped by session.id: three new sessions per run
    finally:
        p.stop()
