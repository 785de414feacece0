"""The emulator's output as the real Collector decodes it: every metric and event, attribute, unit, temporality.

One Collector (otelcol-lab, collector-configs/base.yaml + a test overlay that prints everything in full) receives
three runs, one per protocol. Each run carries its own marker; the test reads the Collector's detailed debug
output and checks it against Claude Code's documented telemetry (labctl.emulator.catalog).
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collector_debug import Event, Point, parse  # this folder is on sys.path (pytest rootdir mode)

from labctl.emulator import catalog
from labctl.emulator.runner import parse_models
from labctl.emulator.session import plan_run
from labctl.matrix.receivers import Collector

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
OVERLAY = Path(__file__).with_name("collector-detailed.yaml")
SEED, SESSIONS, DURATION, RATE, ERRORS = 13, 3, 4.0, 120, 0.25
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def emit(env: dict[str, str], marker: str, tmp: Path) -> dict[str, Any]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CLAUDE_CODE_"))}
    full.update(
        {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_LOGS_EXPORT_INTERVAL": "500",
            **env,
        }
    )
    summary = tmp / f"{marker}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "labctl.emulator",
            "emit",
            "--sessions",
            str(SESSIONS),
            "--duration",
            str(DURATION),
            "--rate",
            str(RATE),
            "--error-rate",
            str(ERRORS),
            "--seed",
            str(SEED),
            "--marker",
            marker,
            "--summary-file",
            str(summary),
            "--quiet",
        ],
        env=full,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(summary.read_text())
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("decode")
    c = Collector(tmp / "collector", extra_configs=[OVERLAY]).start()
    try:
        out: dict[str, Any] = {"before": c.received()}
        out["grpc"] = emit(
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{c.grpc_addr}",
                "OTEL_RESOURCE_ATTRIBUTES": "team=blue,cost_center=42",
                "OTEL_METRICS_INCLUDE_VERSION": "1",
            },
            "decode-grpc",
            tmp,
        )
        out["after_grpc"] = c.received()
        out["http/protobuf"] = emit(
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{c.http_addr}",
                "OTEL_LOG_USER_PROMPTS": "1",
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative",
                "OTEL_METRICS_INCLUDE_SESSION_ID": "false",
                "OTEL_METRICS_INCLUDE_ACCOUNT_UUID": "false",
            },
            "decode-protobuf",
            tmp,
        )
        out["after_protobuf"] = c.received()
        out["http/json"] = emit(
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{c.http_addr}",
            },
            "decode-json",
            tmp,
        )
        time.sleep(2.0)  # the Collector's batch processor flushes after 1 s
        out["after_json"] = c.received()
        points, events = parse(c.log_text())
        out["points"], out["events"] = points, events
        yield out
    finally:
        c.stop()


def by_marker(items: list[Any], marker: str) -> list[Any]:
    return [i for i in items if i.resource.get("lab.marker") == marker]


def test_the_plan_exercises_every_metric_and_event() -> None:
    plans = plan_run(SEED, SESSIONS, DURATION, RATE, parse_models(None), ERRORS)
    kinds = collections.Counter(a.kind for p in plans for a in p.actions)
    commands = {
        a.data.get("command") for p in plans for a in p.actions if a.kind == "tool" and a.data["success"]
    }
    edits = [
        a for p in plans for a in p.actions if a.kind == "tool" and a.data["tool_name"] in ("Edit", "Write")
    ]
    assert {"session_start", "user_prompt", "api_request", "api_error", "tool", "active_time"} <= set(kinds)
    assert {"git commit", "gh pr create"} <= commands and edits


def test_every_metric_with_unit_instrument_and_delta_temporality(runs: dict[str, Any]) -> None:
    points: list[Point] = by_marker(runs["points"], "decode-grpc")
    names = {p.metric["Name"] for p in points}
    assert names == set(catalog.METRICS), names ^ set(catalog.METRICS)
    for p in points:
        m = catalog.METRICS[p.metric["Name"]]
        assert p.metric["Unit"] == m.unit, p.metric
        assert p.metric["DataType"] == "Sum" and p.metric["IsMonotonic"] == "true"
        assert p.metric["AggregationTemporality"] == "Delta"
        assert p.scope == f"{catalog.METER_NAME} {catalog.SCOPE_VERSION}"
        assert p.value is not None and p.value > 0


def test_metric_attributes_standard_and_specific(runs: dict[str, Any]) -> None:
    points: list[Point] = by_marker(runs["points"], "decode-grpc")
    sessions = set(runs["grpc"]["sessions"])
    allowed = {
        "start_type": {"fresh", "resume", "continue"},
        "type": {"added", "removed", "user", "cli", *catalog.TOKEN_TYPES},
        "decision": {"accept", "reject"},
        "query_source": {"main", "subagent", "auxiliary"},
        "model": set(catalog.MODELS),
        "tool_name": {"Edit", "Write", "NotebookEdit"},
    }
    for p in points:
        a = p.attributes
        for key in (
            "session.id",
            "app.version",
            "organization.id",
            "user.account_uuid",
            "user.id",
            "terminal.type",
            "team",
            "cost_center",
            "lab.marker",
        ):
            assert key in a, (p.metric["Name"], key)
        assert a["session.id"] in sessions and a["app.version"] == catalog.APP_VERSION
        for key in catalog.METRICS[p.metric["Name"]].attributes:
            assert key in a, (p.metric["Name"], key)
            if key in allowed:
                assert a[key] in allowed[key], (key, a[key])
    token_types = {p.attributes["type"] for p in points if p.metric["Name"] == "claude_code.token.usage"}
    assert token_types == set(catalog.TOKEN_TYPES)


def test_resource_like_claude_codes(runs: dict[str, Any]) -> None:
    points: list[Point] = by_marker(runs["points"], "decode-grpc")
    r = points[0].resource
    assert r["service.name"] == "claude-code" and r["service.version"] == catalog.APP_VERSION
    assert {"os.type", "os.version", "host.arch"} <= set(r)
    assert (r["team"], r["cost_center"]) == ("blue", "42")


def test_every_event_with_name_timestamp_sequence_and_attributes(runs: dict[str, Any]) -> None:
    events: list[Event] = by_marker(runs["events"], "decode-grpc")
    names = {e.attributes["event.name"] for e in events}
    assert names == set(catalog.EVENTS)
    seqs: dict[str, list[int]] = collections.defaultdict(list)
    for e in events:
        a = e.attributes
        assert e.body == f"claude_code.{a['event.name']}"
        assert e.scope == f"{catalog.EVENT_LOGGER_NAME} {catalog.SCOPE_VERSION}"
        assert ISO.match(a["event.timestamp"]), a["event.timestamp"]
        assert isinstance(a["event.sequence"], int)
        seqs[a["session.id"]].append(a["event.sequence"])
        # error_type only on failures; status_code only when there was an HTTP answer (as 2.1.332 sends it)
        required = set(catalog.EVENTS[a["event.name"]]) - {"error_type", "status_code"}
        assert required <= set(a), (a["event.name"], required - set(a))
        if a["event.name"] == "user_prompt":
            assert a["prompt"] == "<REDACTED>"
        if a["event.name"] == "tool_result" and a["success"] == "false":
            assert "error_type" in a
    for session, s in seqs.items():
        assert sorted(s) == list(range(len(s))), session  # no gap, no duplicate: nothing lost on the way


def test_tokens_and_cost_add_up_between_metrics_and_events(runs: dict[str, Any]) -> None:
    points: list[Point] = by_marker(runs["points"], "decode-grpc")
    events: list[Event] = by_marker(runs["events"], "decode-grpc")
    metric_in = sum(
        p.value or 0
        for p in points
        if p.metric["Name"] == "claude_code.token.usage" and p.attributes["type"] == "input"
    )
    event_in = sum(
        int(e.attributes["input_tokens"]) for e in events if e.attributes["event.name"] == "api_request"
    )
    assert metric_in == event_in > 0
    cost_m = sum(p.value or 0 for p in points if p.metric["Name"] == "claude_code.cost.usage")
    cost_e = sum(
        float(e.attributes["cost_usd"]) for e in events if e.attributes["event.name"] == "api_request"
    )
    assert cost_m == pytest.approx(cost_e, rel=1e-3)


def test_switches_prompts_and_cumulative_over_http_protobuf(runs: dict[str, Any]) -> None:
    points: list[Point] = by_marker(runs["points"], "decode-protobuf")
    events: list[Event] = by_marker(runs["events"], "decode-protobuf")
    assert points and events
    assert {p.metric["AggregationTemporality"] for p in points} == {"Cumulative"}
    assert all("session.id" not in p.attributes and "user.account_uuid" not in p.attributes for p in points)
    assert all(
        "app.version" not in p.attributes for p in points
    )  # OTEL_METRICS_INCLUDE_VERSION off by default
    prompts = {e.attributes["prompt"] for e in events if e.attributes["event.name"] == "user_prompt"}
    assert prompts and "<REDACTED>" not in prompts  # OTEL_LOG_USER_PROMPTS=1 sends the text


def test_each_protocol_received_by_the_collector(runs: dict[str, Any]) -> None:
    def total(snapshot: dict[str, dict[str, float]], key: str, transport: str) -> float:
        return snapshot.get(key, {}).get(transport, 0.0)

    for key in ("accepted_metrics", "accepted_logs"):
        assert total(runs["after_grpc"], key, "grpc") > total(runs["before"], key, "grpc")
        assert total(runs["after_protobuf"], key, "http") > total(runs["after_grpc"], key, "http")
        assert total(runs["after_json"], key, "http") > total(runs["after_protobuf"], key, "http")
    for marker, proto in (
        ("decode-grpc", "grpc"),
        ("decode-protobuf", "http/protobuf"),
        ("decode-json", "http/json"),
    ):
        assert by_marker(runs["points"], marker) and by_marker(runs["events"], marker), proto
        exporters = {e["name"]: e for e in runs[proto]["exporters"]}
        assert (
            exporters[f"metrics/otlp({proto})"]["sent"] > 0
            and exporters[f"metrics/otlp({proto})"]["failed"] == 0
        )
        assert exporters[f"logs/otlp({proto})"]["sent"] > 0
