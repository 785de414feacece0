"""`labctl env` prints the block for a real Claude Code; `labctl emit --from-lab` uses the very same block."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.emulator.labenv import lab_env, render
from labctl.emulator.settings import load_settings
from labctl.errors import LabError
from labctl.state import LabState


def make_lab(tmp: Path, stage: str = "module-1", **fields: Any) -> LabState:
    lab = LabState(
        dir=tmp,
        stage=stage,
        ports={"proxy": {"otlp_grpc": 24317, "otlp_http": 24318, "admin": 24320}},
        **fields,
    )
    lab.save()
    return lab


@pytest.mark.parametrize(
    ("protocol", "url"),
    [
        ("grpc", "http://127.0.0.1:24317"),
        ("http/protobuf", "http://127.0.0.1:24318"),
        ("http/json", "http://127.0.0.1:24318"),
    ],
)
def test_block_points_at_the_proxy(tmp_path: Path, protocol: str, url: str) -> None:
    env = lab_env(make_lab(tmp_path), protocol)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == url and env["OTEL_EXPORTER_OTLP_PROTOCOL"] == protocol
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in env
    s = load_settings(env)  # the block is a valid Claude Code configuration
    assert s.metrics_otlp and s.logs_otlp and s.metric_interval_ms == 5000


@pytest.mark.parametrize(
    ("protocol", "url"),
    [
        ("grpc", "http://127.0.0.1:24317"),
        ("http/protobuf", "http://127.0.0.1:24318/v1/traces"),
        ("http/json", "http://127.0.0.1:24318/v1/traces"),
    ],
)
def test_spans_go_where_metrics_go_from_the_stage_that_stores_them(
    tmp_path: Path, protocol: str, url: str
) -> None:
    # Module 3 runs Jaeger: the block switches the client's spans on, same protocol and endpoint.
    env = lab_env(make_lab(tmp_path, stage="module-3"), protocol)
    assert env["CLAUDE_CODE_ENHANCED_TELEMETRY_BETA"] == "1" and env["OTEL_TRACES_EXPORTER"] == "otlp"
    s = load_settings(env)
    assert s.traces_exporters == ("otlp",) and s.traces_otlp and s.traces_otlp.url == url
    assert s.traces_otlp.protocol == protocol and s.traces_interval_ms == 2000
    # With `up --auth` the spans carry the lab's token like the other signals (one headers variable).
    auth = lab_env(make_lab(tmp_path / "auth", stage="module-3", settings={"auth": True, "auth_token": "t"}))
    traces = load_settings({**auth, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}).traces_otlp
    assert traces and traces.headers == {"Authorization": "Bearer t"}
    # Modules 1-2 store no spans: the block leaves them off, and so does the emulator it configures.
    for stage in ("module-1", "module-2"):
        early = lab_env(make_lab(tmp_path / stage, stage=stage), protocol)
        assert not {"CLAUDE_CODE_ENHANCED_TELEMETRY_BETA", "OTEL_TRACES_EXPORTER"} & set(early)
        assert load_settings(early).traces_otlp is None


@pytest.mark.parametrize(
    "fields",
    [
        {"settings": {"auth": True, "auth_token": "tok123"}},
        {"settings": {"auth_enabled": True, "auth_token": "tok123"}},
        {"overrides": {"proxy": {"env": {"LAB_PROXY_AUTH_TOKEN": "tok123"}}}},
    ],
)
def test_auth_header_when_the_lab_requires_it(tmp_path: Path, fields: dict[str, Any]) -> None:
    env = lab_env(make_lab(tmp_path, **fields))
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == "Authorization=Bearer tok123"
    for protocol in ("grpc", "http/json"):
        s = load_settings({**env, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol})
        assert s.metrics_otlp and s.metrics_otlp.headers == {"Authorization": "Bearer tok123"}


def test_token_without_auth_switch_is_not_sent(tmp_path: Path) -> None:
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in lab_env(make_lab(tmp_path, settings={"auth_token": "x"}))


def test_rendering_quotes_values(tmp_path: Path) -> None:
    env = lab_env(make_lab(tmp_path, settings={"auth": True, "auth_token": "a b"}))
    sh = render(env, "sh")
    parsed = dict(line.removeprefix("export ").split("=", 1) for line in sh.splitlines())
    assert shlex.split(parsed["OTEL_EXPORTER_OTLP_HEADERS"]) == ["Authorization=Bearer a b"]
    assert render(env, "fish").startswith("set -gx ")
    with pytest.raises(LabError):
        render(env, "tcsh")
    with pytest.raises(LabError):
        lab_env(make_lab(tmp_path), "http")


@pytest.mark.integration
def test_env_and_emit_from_lab_against_a_running_lab(
    native_lab: Callable[[str], LabState],
    labctl: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    lab = native_lab("module-1")
    out = labctl("env", "--json", "--protocol", "http/json", state_dir=lab.dir)
    block = json.loads(out.stdout)
    assert block["OTEL_EXPORTER_OTLP_ENDPOINT"] == lab.url("proxy", "otlp_http")
    text = labctl("env", state_dir=lab.dir).stdout
    assert f"export OTEL_EXPORTER_OTLP_ENDPOINT={lab.url('proxy', 'otlp_grpc')}" in text
    run = labctl(
        "emit",
        "--from-lab",
        "--protocol",
        "http/json",
        "--duration",
        "3",
        "--rate",
        "120",
        "--seed",
        "1",
        "--json",
        "--quiet",
        state_dir=lab.dir,
    )
    summary = json.loads(run.stdout)
    assert summary["settings"]["metrics_otlp"]["url"] == lab.url("proxy", "otlp_http") + "/v1/metrics"
    stats = requests.get(lab.url("proxy", "admin") + "/api/stats", timeout=5).json()
    accepted = stats["counters"]["accepted"]
    assert accepted["metrics"] > 0 and accepted["logs"] > 0
