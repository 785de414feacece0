"""`labctl up --auth`: the proxy demands the lab's bearer token, `labctl env` hands it to clients, the
emulator and `labctl check` present it, and `--no-auth` turns it off again."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from labctl.state import LabState
from tests.conftest import run_labctl, started_lab


def _env_block(state_dir: Path) -> dict[str, str]:
    return json.loads(run_labctl("env", "--protocol", "http/protobuf", "--json", state_dir=state_dir).stdout)


def test_auth_on_then_off(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    with started_lab("module-1", state_dir, "--auth") as lab:
        token = lab.settings["auth_token"]
        env = _env_block(state_dir)
        assert env["OTEL_EXPORTER_OTLP_HEADERS"] == f"Authorization=Bearer {token}"

        metrics = f"{lab.url('proxy', 'otlp_http')}/v1/metrics"
        headers = {"Content-Type": "application/x-protobuf"}
        assert requests.post(metrics, data=b"", headers=headers, timeout=5).status_code == 401
        wrong = {**headers, "Authorization": "Bearer not-the-token"}
        assert requests.post(metrics, data=b"", headers=wrong, timeout=5).status_code == 401
        right = {**headers, "Authorization": f"Bearer {token}"}
        assert requests.post(metrics, data=b"", headers=right, timeout=5).status_code == 200

        emitted = run_labctl("emit", "--from-lab", "--sessions", "1", "--duration", "3", "--json",
                             "--fail-on-error", state_dir=state_dir)
        summary = json.loads(emitted.stdout)
        assert summary["shutdown_flushed"] is True
        assert all(e["failed"] == 0 for e in summary["exporters"]), summary["exporters"]
        assert sum(e["sent"] for e in summary["exporters"]) > 0, summary["exporters"]

        checked = run_labctl("check", "--layer", "1", "--json", state_dir=state_dir, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert token not in checked.stdout + checked.stderr  # the token is never printed by check

        run_labctl("up", "module-1", "--no-auth", state_dir=state_dir)
        assert "auth_token" not in LabState.load(state_dir).settings
        assert "OTEL_EXPORTER_OTLP_HEADERS" not in _env_block(state_dir)
        assert requests.post(metrics, data=b"", headers=headers, timeout=5).status_code == 200
