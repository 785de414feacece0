"""Learning mode: telemetry the contract lacks (a newer client) becomes a reviewed contract patch.

A "newer Claude Code" is simulated with real OTLP requests carrying what the lab's contract does not
know: a new metric, a changed unit, a new enum value, a new event, a new attribute, a new attribute on
everything, a new span and a span under a new parent. `labctl contract propose` must list each of them,
print them as a Weaver registry diff, and write a contract under which the same telemetry conforms.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from labctl.contract import default_contract_path, load_contract
from labctl.contract.drift import propose
from labctl.contract.samples import Point, key_values, logs_request, metrics_request, session_attrs
from labctl.contract.shape import TelemetryShape
from labctl.state import free_port

REPO = Path(__file__).resolve().parents[2]
NEW = {"deployment.ring": "canary"}  # a new attribute the newer client puts on every metric, event and span


def newer_client() -> list[tuple[str, Any]]:
    a = session_attrs("s-new", **NEW)
    m = {"model": "claude-opus-5-5", "query_source": "main"}
    metrics = metrics_request(
        [
            Point("claude_code.token.usage", 10, {**a, **m, "type": "input"}),
            Point("claude_code.token.usage", 3, {**a, **m, "type": "reasoning"}),  # a new enum member
            Point("claude_code.cost.usage", 4, {**a, **m}, unit="cents"),  # the unit changed
            Point("claude_code.session.count", 1, {**a, "start_type": "fresh"}),
            Point("claude_code.web_search.count", 2, {**a, "provider": "builtin"}),  # a new metric
        ]
    )
    events = logs_request(
        [
            (
                "claude_code.api_request",
                {
                    **a,
                    "model": "claude-opus-5-5",
                    "cost_usd": "0.01",
                    "duration_ms": "80",
                    "input_tokens": "10",
                    "output_tokens": "3",
                    "cache_read_tokens": "0",
                    "cache_creation_tokens": "0",
                    "thinking_tokens": "42",
                },
            ),  # a new attribute
            ("claude_code.user_prompt", {**a, "prompt_length": "5", "prompt": "<REDACTED>"}),
            ("claude_code.plan_approved", {**a, "plan_steps": "4", "approved_by": "user"}),  # a new event
        ]
    )
    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    rs.resource.attributes.extend(key_values({"service.name": "claude-code"}))
    ss = rs.scope_spans.add()
    conv = {"gen_ai.conversation.id": "s-new", **NEW}

    def span(name: str, sid: int, parent: int | None, **attrs: Any) -> None:
        sp = ss.spans.add(
            name=name,
            trace_id=b"\x01" * 16,
            span_id=sid.to_bytes(8, "big"),
            kind=1,
            start_time_unix_nano=10**18,
            end_time_unix_nano=10**18 + 10**6,
        )
        if parent:
            sp.parent_span_id = parent.to_bytes(8, "big")
        sp.attributes.extend(key_values({**conv, "span.type": name.removeprefix("claude_code."), **attrs}))

    span("claude_code.interaction", 1, None)
    span("claude_code.web_search", 2, 1, query_count=3)  # a new span
    span("claude_code.llm_request", 3, 2, **{"gen_ai.request.model": "claude-opus-5-5"})  # a new parent
    return [("metrics", metrics), ("logs", events), ("traces", traces)]


def _violations(contract: Any) -> list[str]:
    return [
        f"{v['rule']} {v['path']}"
        for sig, req in newer_client()
        for v in contract.evaluate(sig, req).violations()
    ]


def test_the_proposal_names_every_gap_and_the_patched_contract_accepts_the_newer_client() -> None:
    base = load_contract(default_contract_path())
    assert len(_violations(base)) >= 5  # the lab's contract refuses the newer client
    shape = TelemetryShape()
    for sig, req in newer_client():
        shape.observe(base.evaluate(sig, req))
    patched, changes = propose(base.spec, shape, "observed in a test")
    found = {(c.type, c.what, c.name, c.attribute, c.value) for c in changes}
    assert ("added", "metric", "claude_code.web_search.count", "", "counter") in found
    assert ("updated", "unit", "claude_code.cost.usage", "", "cents") in found
    assert ("added", "enum_member", "claude_code.token.usage", "type", "reasoning") in found
    assert ("added", "event", "claude_code.plan_approved", "", "") in found
    assert ("added", "attribute", "claude_code.api_request", "thinking_tokens", "number") in found
    assert ("added", "attribute", "", "deployment.ring", "string") in found  # once, as a common attribute
    assert ("added", "span", "claude_code.web_search", "", "internal") in found
    assert ("added", "parent", "claude_code.llm_request", "", "claude_code.web_search") in found
    assert not any(c.attribute == "deployment.ring" and c.name for c in changes)
    assert patched.events["claude_code.plan_approved"].attributes["plan_steps"].type == "number"
    assert patched.spans["claude_code.web_search"].parents == ("claude_code.interaction",)
    assert base.spec.events.get("claude_code.plan_approved") is None  # the original is left alone
    # the patched contract, written and read back, accepts everything the newer client sent
    from labctl.contract import contract_from_text

    again = contract_from_text(yaml.safe_dump(patched.to_dict(), sort_keys=False), "patched.yaml")
    assert _violations(again) == []
    # nothing left to propose
    shape2 = TelemetryShape()
    for sig, req in newer_client():
        shape2.observe(again.evaluate(sig, req))
    assert propose(again.spec, shape2)[1] == []


def test_the_shape_survives_its_json_form() -> None:
    c = load_contract(default_contract_path())
    shape = TelemetryShape()
    for sig, req in newer_client():
        shape.observe(c.evaluate(sig, req))
    back = TelemetryShape.from_dict(json.loads(json.dumps(shape.to_dict())))
    assert back.to_dict() == shape.to_dict()
    assert propose(c.spec, back)[1] == propose(c.spec, shape)[1]
    assert shape.spans["claude_code.llm_request"].parents == {"claude_code.web_search"}
    assert shape.metrics["claude_code.cost.usage"].units == {"cents"}


@pytest.mark.integration
def test_cli_propose_from_payload_files_prints_the_registry_diff_and_writes(
    labctl_run, tmp_path: Path
) -> None:
    files = []
    for i, (_sig, req) in enumerate(newer_client()):
        f = tmp_path / f"payload{i}.pb"
        f.write_bytes(req.SerializeToString())
        files.append(str(f))
    out = tmp_path / "claude-code.next.yaml"
    r = labctl_run("contract", "propose", *files, "--write", str(out))
    assert r.returncode == 0, r.stderr
    assert "+++ registry/claude-code.yaml (proposed)" in r.stdout
    assert "+  metric_name: claude_code.web_search.count" in r.stdout
    assert "claude_code.plan_approved" in r.stdout and "wrote the patched contract" in r.stderr + r.stdout
    r = labctl_run("contract", "validate", str(out))
    assert r.returncode == 0, r.stderr
    for f in files:
        assert labctl_run("contract", "check", f, "--contract", str(out)).returncode == 0
        assert labctl_run("contract", "check", f).returncode == 1  # the lab's contract still refuses it
    r = labctl_run("contract", "propose", *files, "--json", "--contract", str(out))
    assert r.returncode == 0 and json.loads(r.stdout)["changes"] == {}


@contextlib.contextmanager
def _proxy(tmp_path: Path, mode: str) -> Iterator[tuple[int, str]]:
    """A real proxy (`labctl proxy serve`) on free ports: (its OTLP/HTTP port, its admin URL)."""
    http, admin = free_port(), free_port()
    cfg = tmp_path / f"proxy-{mode}.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "listen": {
                    "otlp_grpc": f"127.0.0.1:{free_port()}",
                    "otlp_http": f"127.0.0.1:{http}",
                    "admin": f"127.0.0.1:{admin}",
                },
                "data_dir": str(tmp_path / f"data-{mode}"),
                "inspect": {"console": "off"},
                "contract": {"path": str(default_contract_path()), "mode": mode},
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl", "proxy", "serve", "-c", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{admin}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the proxy did not start"
            time.sleep(0.2)
        yield http, base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _send(http: int) -> None:
    for sig, req in newer_client():
        r = requests.post(
            f"http://127.0.0.1:{http}/v1/{sig}",
            data=req.SerializeToString(),
            timeout=10,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert r.status_code == 200  # learning observes: nothing is dropped


@pytest.mark.integration
def test_the_proxy_in_learning_mode_records_and_propose_reads_it(labctl_run, tmp_path: Path) -> None:
    with _proxy(tmp_path, "learn") as (http, base):
        _send(http)
        drift = requests.get(base + "/api/contract/drift", timeout=10).json()
        assert drift["mode"] == "learn" and drift["recording"] is True
        assert "claude_code.web_search.count" in drift["observed"]["metrics"]
        added = {c["name"] for c in drift["changes"]["events"] if c["what"] == "event"}
        assert added == {"claude_code.plan_approved"}
        r = labctl_run("contract", "propose", "--url", base, "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["source"].startswith(f"the proxy at {base}")
        assert {c["name"] for c in doc["changes"]["spans"]} == {
            "claude_code.web_search",
            "claude_code.llm_request",
        }
        reset = requests.delete(base + "/api/contract/drift", timeout=10).json()
        assert reset["observed"]["metrics"] == {} and reset["changes"] == {}


@pytest.mark.integration
def test_learning_switched_on_in_a_running_observe_proxy(labctl_run, tmp_path: Path) -> None:
    r = labctl_run("contract", "propose", "--url", f"http://127.0.0.1:{free_port()}")
    assert r.returncode != 0 and "cannot reach the proxy's admin API" in r.stderr
    with _proxy(tmp_path, "observe") as (http, base):
        r = labctl_run("contract", "propose", "--url", base)
        assert (
            r.returncode != 0 and "not in learning mode" in r.stderr and "labctl contract learn" in r.stderr
        )
        assert (
            requests.put(base + "/api/contract/drift", json={"recording": "yes"}, timeout=10).status_code
            == 400
        )
        r = labctl_run("contract", "learn", "--url", base)
        assert r.returncode == 0 and "is learning since" in r.stdout + r.stderr
        _send(http)
        r = labctl_run("contract", "propose", "--url", base, "--json")
        assert r.returncode == 0, r.stderr
        assert {c["name"] for c in json.loads(r.stdout)["changes"]["events"]} >= {"claude_code.plan_approved"}
        assert requests.get(base + "/api/contract", timeout=10).json()["mode"] == "observe"
        r = labctl_run("contract", "learn", "--stop", "--url", base)
        assert r.returncode == 0
        assert requests.get(base + "/api/contract/drift", timeout=10).json()["recording"] is False
