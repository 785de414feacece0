"""The emulator against the real Claude Code: the same scenario through both, the same telemetry shape.

The pinned client (`labctl install claude-code`) plays a model-stub scenario offline; `labctl emit
--scenario` plays the same one. Both export metrics, events and spans over http/protobuf to a proxy in
learning mode, which records the shape of each. Every difference in metric names, units, instruments,
temporalities, attribute keys and value types, event names and keys, span names, kinds, parents and
keys, and scope versions must be one of the differences the lab accepts (labctl/emulator/conformance.py,
shown in lab/docs/contracts.md); and the real client must not violate the contract.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from labctl.contract import default_contract_path
from labctl.contract.shape import TelemetryShape
from labctl.emulator.conformance import REMAINING, compare, unexplained
from labctl.errors import LabError
from labctl.state import free_port

REPO = Path(__file__).resolve().parents[2]
SCENARIO = "edit-bash"  # Write, Edit and Bash accepted, WebFetch refused: most of what a session sends


def _wait(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.2)


def _telemetry_env(home: Path, otlp: str, stub: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
        "ANTHROPIC_BASE_URL": stub,
        "ANTHROPIC_API_KEY": "sk-ant-lab-model-stub-not-a-real-key",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_LOGS_EXPORT_INTERVAL": "500",
        "OTEL_TRACES_EXPORT_INTERVAL": "500",
        "DISABLE_AUTOUPDATER": "1",
    }


def _shape(admin: str) -> tuple[TelemetryShape, dict[str, Any]]:
    drift = requests.get(admin + "/api/contract/drift", timeout=10).json()
    assert drift["recording"]
    return TelemetryShape.from_dict(drift["observed"]), drift


@pytest.mark.integration
def test_the_emulator_sends_what_the_real_client_sends(tmp_path: Path) -> None:
    from labctl.install.claudecode import resolve
    from labctl.modelstub.client import scenario

    try:
        binary = resolve()
    except LabError as exc:
        # run-all.sh installs the client: under CI its absence is a broken setup, not a skip.
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc.message} ({exc.hint})", pytrace=False)
        pytest.skip(f"{exc.message} ({exc.hint})")
    played = scenario(SCENARIO)
    http, admin_port, stub_port = free_port(), free_port(), free_port()
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "listen": {
                    "otlp_grpc": f"127.0.0.1:{free_port()}",
                    "otlp_http": f"127.0.0.1:{http}",
                    "admin": f"127.0.0.1:{admin_port}",
                },
                "data_dir": str(tmp_path / "proxy"),
                "inspect": {"console": "off"},
                "contract": {"path": str(default_contract_path()), "mode": "learn"},
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "labctl", "proxy", "serve", "-c", str(cfg)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "labctl.modelstub",
                "--listen",
                f"127.0.0.1:{stub_port}",
                "--scenarios",
                str(REPO / "lab" / "scenarios"),
                "--default-scenario",
                SCENARIO,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    admin, stub = f"http://127.0.0.1:{admin_port}", f"http://127.0.0.1:{stub_port}"
    try:
        _wait(admin + "/readyz", procs[0], "the proxy")
        _wait(stub + "/v1/models", procs[1], "the model stub")
        work, home = tmp_path / "work", tmp_path / "home"
        work.mkdir()
        home.mkdir()
        tel = _telemetry_env(home, f"http://127.0.0.1:{http}", stub)
        cmd = [str(binary), "-p", played.prompt, "--allowedTools", ",".join(played.allowed_tools)]
        if played.disallowed_tools:
            cmd += ["--disallowedTools", ",".join(played.disallowed_tools)]
        run = subprocess.run(cmd, env=tel, cwd=work, capture_output=True, timeout=180, check=False)
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        time.sleep(2)  # the last span batch leaves at exit; give the proxy a moment to record it
        real, drift = _shape(admin)
        assert {"claude_code.interaction", "claude_code.llm_request", "claude_code.tool"} <= set(real.spans)
        assert drift["changes"] == {}, drift["changes"]  # the contract knows everything the client sent
        assert requests.get(admin + "/api/violations", timeout=10).json()["violations"] == []
        requests.delete(admin + "/api/contract/drift", timeout=10)

        emit = subprocess.run(
            [
                sys.executable,
                "-m",
                "labctl",
                "emit",
                "--scenario",
                SCENARIO,
                "--duration",
                "3",
                "--seed",
                "1",
                "--quiet",
            ],
            env=tel,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert emit.returncode == 0, emit.stderr.decode()[-2000:]
        time.sleep(1)
        emulated, _ = _shape(admin)
        assert requests.get(admin + "/api/violations", timeout=10).json()["violations"] == []
        differences = compare(real, emulated)
        assert unexplained(differences) == [], "\n".join(map(str, unexplained(differences)))
        # the accepted differences about the emulator's OAuth identity still hold (the table stays true)
        oauth = [r.difference for r in REMAINING if r.difference.aspect == "attribute_only_emulated"]
        assert any(d.detail == oauth[0].detail and d.aspect == oauth[0].aspect for d in differences)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
