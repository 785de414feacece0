"""In a real module-1 lab: data sent to the lab's proxy shows up in `labctl proxy sessions` and the
page, found through the lab's state (no --url)."""

from __future__ import annotations

import json

import pytest
import requests

from labctl.contract.samples import Point, metrics_request, session_attrs


@pytest.mark.integration
def test_proxy_sessions_finds_the_running_labs_proxy(native_lab, labctl) -> None:
    lab = native_lab("module-1")
    http = lab.url("proxy", "otlp_http")
    a = session_attrs("lab-session-1")
    req = metrics_request(
        [
            Point("claude_code.token.usage", 321, {**a, "model": "m", "type": "output"}),
            Point("claude_code.cost.usage", 0.5, {**a, "model": "m"}),
        ]
    )
    r = requests.post(
        f"{http}/v1/metrics",
        data=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert r.status_code == 200
    result = labctl("proxy", "sessions", "--json", state_dir=lab.dir)
    sessions = json.loads(result.stdout)
    assert [s["session_id"] for s in sessions] == ["lab-session-1"]
    assert sessions[0]["tokens"] == {"output": 321} and sessions[0]["cost_usd"] == 0.5
    page = requests.get(lab.url("proxy", "admin") + "/", timeout=5)
    assert page.status_code == 200 and "labctl proxy inspector" in page.text
    contract = requests.get(lab.url("proxy", "admin") + "/api/contract", timeout=5).json()
    assert contract["name"] == "claude-code" and contract["mode"] == "observe"
