"""Console output is readable JSON, a --seed run is reproducible, the prometheus exporter serves :9464."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.checks.exposition import Sample, parse
from labctl.emulator.runner import EmitOptions, Emulator, parse_models
from labctl.emulator.session import plan_run
from labctl.emulator.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def console_objects(text: str) -> list[dict[str, Any]]:
    """The console exporters print one indented JSON document per batch/record, back to back."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def run_console(seed: int, tmp: Path, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CLAUDE_CODE_"))}
    env.update(
        CLAUDE_CODE_ENABLE_TELEMETRY="1",
        OTEL_METRICS_EXPORTER="console",
        OTEL_LOGS_EXPORTER="console",
        OTEL_METRIC_EXPORT_INTERVAL="60000",
        OTEL_LOGS_EXPORT_INTERVAL="200",
    )
    summary = tmp / f"{name}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "labctl.emulator",
            "emit",
            "--sessions",
            "2",
            "--duration",
            "2",
            "--rate",
            "90",
            "--seed",
            str(seed),
            "--summary-file",
            str(summary),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return console_objects(proc.stdout), json.loads(summary.read_text())


def fingerprint(objs: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """What must not depend on timing: final cumulative values per series, and every event minus its clock."""
    series: dict[str, float] = {}
    events = []
    for o in objs:
        if "resource_metrics" in o:
            for rm in o["resource_metrics"]:
                for sm in rm["scope_metrics"]:
                    for m in sm["metrics"]:
                        for dp in m["data"]["data_points"]:
                            series[m["name"] + json.dumps(dp["attributes"], sort_keys=True)] = dp["value"]
        elif "body" in o:
            a = dict(o["attributes"])
            a.pop("event.timestamp")
            events.append((o["body"], json.dumps(a, sort_keys=True)))
    return sorted(series.items()), sorted(events)


@pytest.mark.integration
def test_console_output_is_readable_and_seed_is_deterministic(tmp_path: Path) -> None:
    first, s1 = run_console(42, tmp_path, "a")
    second, s2 = run_console(42, tmp_path, "b")
    other, _ = run_console(43, tmp_path, "c")
    metrics = [o for o in first if "resource_metrics" in o]
    events = [o for o in first if "body" in o]
    assert metrics and events
    scope = metrics[-1]["resource_metrics"][0]["scope_metrics"][0]
    assert scope["scope"]["name"] == "com.anthropic.claude_code"
    assert metrics[-1]["resource_metrics"][0]["resource"]["attributes"]["service.name"] == "claude-code"
    assert {e["body"] for e in events} >= {"claude_code.user_prompt", "claude_code.api_request"}
    assert s1["sessions"] == s2["sessions"] and s1["seed"] == 42
    assert fingerprint(first) == fingerprint(second)
    assert fingerprint(first) != fingerprint(other)


def test_plans_are_identical_for_one_seed() -> None:
    models = parse_models("sonnet=2,opus=1")
    a = plan_run(5, 4, 30, 10, models, 0.1)
    b = plan_run(5, 4, 30, 10, models, 0.1)
    assert [(p.identity, p.actions) for p in a] == [(p.identity, p.actions) for p in b]
    assert {p.identity.session_id for p in a}.isdisjoint(
        {p.identity.session_id for p in plan_run(6, 4, 30, 10, models, 0.1)}
    )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # Like the exporter's own server: connections in TIME_WAIT from earlier scrapes do not hold the port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_prometheus_exporter_scraped_on_9464() -> None:
    if not _port_free(9464):
        pytest.skip("port 9464 is taken by another process (a Claude Code with the prometheus exporter?)")
    settings = load_settings({"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_METRICS_EXPORTER": "prometheus"})
    emulator = Emulator(
        settings,
        EmitOptions(sessions=2, duration_s=30, rate_per_min=120, seed=3, marker="scrape", quiet_sdk=True),
    )
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(emulator.run()), daemon=True)
    t.start()
    try:
        samples: list[Sample] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                samples = parse(requests.get("http://127.0.0.1:9464/metrics", timeout=2).text)
            except requests.RequestException:
                samples = []
            names = {s.name for s in samples}
            if {"claude_code_token_usage_tokens_total", "claude_code_cost_usage_USD_total"} <= names:
                break
            time.sleep(0.3)
        names = {s.name for s in samples}
        assert "claude_code_token_usage_tokens_total" in names, sorted(names)
        assert "claude_code_cost_usage_USD_total" in names
        assert "claude_code_session_count_total" in names
        tokens = [s.labels for s in samples if s.name == "claude_code_token_usage_tokens_total"]
        assert all({"session_id", "model", "type", "lab_marker"} <= set(lbl) for lbl in tokens)
        assert not any(
            n.startswith("python_") for n in names
        )  # only OpenTelemetry metrics, like Claude Code's
    finally:
        emulator.stop.set()
        t.join(timeout=15)
    assert result["actions"] > 0
    assert _port_free(9464)  # the exporter's server is shut down with the run
