"""Against a real proxy process: redaction everywhere, `labctl proxy sessions/export`, the JSONL log."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
import requests
from inspect_harness import REPO

from labctl.contract.samples import Point, logs_request, metrics_request, sample_metrics, session_attrs

TOKEN = "tok-3f9a1c77e2b84d0f"
PROMPT = "refactor the invoice module and add tests for the tax rounding"
PARAMS = '{"command": "cat ~/.ssh/id_rsa_secretfile"}'


def labctl(*args: str, token: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "COLUMNS": "200",
        **({"LABCTL_PROXY_TOKEN": token} if token else {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "labctl", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@pytest.mark.integration
def test_token_and_prompt_never_appear_in_any_output(start_proxy) -> None:
    proxy = start_proxy(
        auth={"bearer_token": TOKEN}, inspect={"console": "points"}, redact={"attributes": ["user.email"]}
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    a = {**session_attrs("sess-red"), "user.email": "student@example.org"}
    events = logs_request(
        [
            ("claude_code.user_prompt", {**a, "prompt_length": len(PROMPT), "prompt": PROMPT}),
            (
                "claude_code.tool_result",
                {**a, "tool_name": "Bash", "success": "true", "duration_ms": 3, "tool_parameters": PARAMS},
            ),
            # a violating record with the prompt in it: violation messages must not quote it either
            ("claude_code.user_prompt", {**a, "prompt": PROMPT}),
        ]
    )
    r = proxy.send("logs", events, auth)
    assert r.status_code == 200, r.text
    r = proxy.send(
        "metrics",
        metrics_request([Point("claude_code.token.usage", 10, {**a, "model": "m", "type": "input"})]),
        auth,
    )
    assert r.status_code == 200
    assert proxy.send("metrics", sample_metrics(), {"Authorization": "Bearer wrong"}).status_code == 401

    outputs = {}
    for path in (
        "/",
        "/static/app.js",
        "/metrics",
        "/api/payloads",
        "/api/payloads/1",
        "/api/payloads/2",
        "/api/violations",
        "/api/sessions",
        "/api/sessions/sess-red",
        "/api/alerts",
        "/api/contract",
        "/api/overview",
        "/api/stats",
        "/api/export?format=json",
        "/api/export?format=csv",
        "/api/export?what=violations&format=csv",
    ):
        # With a token configured the admin plane demands it too (labctl/proxy/guard.py).
        assert requests.get(proxy.admin + path, timeout=10).status_code == (
            200 if path == "/metrics" else 401
        )
        resp = requests.get(proxy.admin + path, timeout=10, headers=auth)
        assert resp.status_code == 200, (path, resp.status_code)
        outputs[path] = resp.text
    proxy.wait_log()
    outputs["jsonl"] = (proxy.data_dir / "inspect" / "records.jsonl").read_text()
    outputs["cli sessions"] = labctl("proxy", "sessions", "--url", proxy.admin, "--json", token=TOKEN).stdout
    outputs["cli export"] = labctl(
        "proxy", "export", "--format", "csv", "--url", proxy.admin, token=TOKEN
    ).stdout
    outputs["proxy log"] = proxy.log_text()
    for name, text in outputs.items():
        for secret in (TOKEN, PROMPT, "id_rsa_secretfile", "student@example.org"):
            assert secret not in text, f"{secret!r} leaked into {name}"
    # ...and the data itself did arrive and is visible, redacted
    payload = json.loads(outputs["/api/payloads/1"])
    assert payload["headers"]["authorization"] == "[REDACTED]"
    prompt_rec = payload["records"][0]
    assert prompt_rec["name"] == "user_prompt" and prompt_rec["attributes"]["prompt"] == "[REDACTED]"
    assert payload["records"][1]["attributes"]["tool_parameters"] == "[REDACTED]"
    assert payload["records"][2]["verdict"] == "violation"
    assert "[REDACTED]" in outputs["jsonl"] and "user_prompt" in outputs["proxy log"]


@pytest.mark.integration
def test_sessions_and_export_commands(start_proxy) -> None:
    proxy = start_proxy()
    for sid in ("alpha", "beta"):
        a = session_attrs(sid)
        pts = [
            Point("claude_code.token.usage", 1000, {**a, "model": "m", "type": "input"}),
            Point("claude_code.token.usage", 200, {**a, "model": "m", "type": "output"}),
            Point("claude_code.cost.usage", 0.25, {**a, "model": "m"}),
            Point("claude_code.lines_of_code.count", 12, {**a, "type": "added"}),
            Point("claude_code.commit.count", 1, a),
        ]
        assert proxy.send("metrics", metrics_request(pts)).status_code == 200
        assert proxy.send("metrics", metrics_request(pts[:1])).status_code == 200  # delta: adds 1000 more

    r = labctl("proxy", "sessions", "--url", proxy.admin, "--json")
    assert r.returncode == 0, r.stderr
    sessions = {s["session_id"]: s for s in json.loads(r.stdout)}
    assert set(sessions) == {"alpha", "beta"}
    assert sessions["alpha"]["tokens"] == {"input": 2000, "output": 200}
    assert sessions["alpha"]["cost_usd"] == 0.25 and sessions["alpha"]["lines_added"] == 12
    r = labctl("proxy", "sessions", "--url", proxy.admin)
    assert r.returncode == 0 and "alpha" in r.stdout and "2000/200/0/0" in r.stdout

    r = labctl("proxy", "export", "--format", "csv", "--url", proxy.admin)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.returncode == 0 and {row["session_id"] for row in rows} == {"alpha", "beta"}
    assert {row["tokens_input"] for row in rows} == {"2000"}
    r = labctl("proxy", "export", "--format", "json", "--url", proxy.admin)
    assert {s["session_id"] for s in json.loads(r.stdout)["sessions"]} == {"alpha", "beta"}

    # JSONL: one record per data point, each with signal, resource, attributes, value, verdict, violations
    proxy.wait_log()
    lines = [json.loads(x) for x in (proxy.data_dir / "inspect" / "records.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    assert all(
        {"signal", "resource", "attributes", "value", "verdict", "violations"} <= set(d) for d in lines
    )

    r = labctl("proxy", "sessions", "--url", "http://127.0.0.1:9")
    assert r.returncode == 2 and "cannot reach the proxy's admin API" in r.stderr


@pytest.mark.integration
def test_contract_edit_is_picked_up_by_the_inspector(start_proxy, tmp_path) -> None:
    import time

    contract = tmp_path / "contract.yaml"
    contract.write_text((REPO / "lab" / "contracts" / "claude-code.yaml").read_text())
    proxy = start_proxy(contract={"path": str(contract), "mode": "observe", "reload": True})
    info = requests.get(proxy.admin + "/api/contract", timeout=5).json()
    assert info["loaded"] and info["name"] == "claude-code"  # known before any data arrives
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

    def answer() -> str:
        resp = ExportMetricsServiceResponse.FromString(proxy.send("metrics", point).content)
        return resp.partial_success.error_message

    point = metrics_request([Point("claude_code.commit.count", 1, session_attrs())])
    assert answer() == ""
    # the class decides commits are not part of the contract any more
    text = contract.read_text().replace("  claude_code.commit.count:", "  claude_code.commit.count.retired:")
    contract.write_text(text.replace("contract: claude-code", "contract: claude-code-v2"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "is not in the contract" in answer():  # observe mode: accepted, but reported
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the edited contract was not picked up")
    info = requests.get(proxy.admin + "/api/contract", timeout=5).json()
    assert (
        info["name"] == "claude-code-v2" and "claude_code.commit.count.retired" in info["contract"]["metrics"]
    )
    violations = requests.get(proxy.admin + "/api/violations", timeout=5).json()["violations"]
    assert violations[0]["rule"] == "unknown_metric" and violations[0]["name"] == "claude_code.commit.count"
