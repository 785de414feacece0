"""Threshold alerts firing and resolving (page data, API, log, /metrics) and the /metrics exposition."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from labctl.contract import contract_from_text, default_contract_path, load_contract
from labctl.contract.samples import Point, logs_request, metrics_request, session_attrs
from labctl.errors import LabError
from labctl.proxy.inspect import Inspector
from labctl.proxy.stats import Stats


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cc():
    return load_contract(default_contract_path())


def tokens(value: int, sid: str = "s1", temporality: str = "delta") -> Point:
    return Point(
        "claude_code.token.usage",
        value,
        {**session_attrs(sid), "model": "m", "type": "input"},
        temporality=temporality,
        start_ns=1,
    )


def fetch(ins: Inspector, *paths: str, stats: Any = None) -> list[str]:
    """GET the paths from the inspector's routes served by a real aiohttp server."""
    return asyncio.run(_fetch(ins, paths, stats))


async def _fetch(ins: Inspector, paths: tuple[str, ...], stats: Any) -> list[str]:
    app = web.Application()
    app.add_routes(ins.routes(stats))
    out = []
    async with TestClient(TestServer(app)) as client:
        for p in paths:
            r = await client.get(p)
            assert r.status == 200, (p, r.status)
            out.append(await r.text())
    return out


def alert_lines(path: Path) -> list[dict[str, Any]]:
    return [d for d in map(json.loads, path.read_text().splitlines()) if d.get("type") == "alert"]


@pytest.mark.integration
def test_token_rate_alert_fires_and_resolves(cc, tmp_path: Path, make_inspector) -> None:
    clock = Clock()
    ins = make_inspector(
        {"alerts": [{"name": "burst", "kind": "tokens_per_minute", "threshold": 1000, "window": "60s"}]},
        tmp_path,
        clock=clock,
    )
    ins.observe("metrics", cc.evaluate("metrics", metrics_request([tokens(600)])))
    assert ins.alerts.active() == []
    clock.now += 10
    ins.observe("metrics", cc.evaluate("metrics", metrics_request([tokens(600)])))
    [firing] = ins.alerts.active()
    assert firing["name"] == "burst" and firing["value"] == 1200 and firing["state"] == "firing"
    alerts_json, metrics = fetch(ins, "/api/alerts", "/metrics")
    assert json.loads(alerts_json)["firing"] == 1
    assert 'labctl_proxy_alert_firing{alert="burst"} 1' in metrics
    # a minute later, with no new tokens, the rate is 0: a read re-evaluates and resolves it
    clock.now += 61
    alerts_json, metrics = fetch(ins, "/api/alerts", "/metrics")
    snap = json.loads(alerts_json)
    assert snap["firing"] == 0 and snap["alerts"][0]["state"] == "resolved"
    assert [h["state"] for h in snap["history"]] == ["resolved", "firing"]
    assert 'labctl_proxy_alert_firing{alert="burst"} 0' in metrics
    assert ins.flush_log()
    assert [a["state"] for a in alert_lines(tmp_path / "inspect" / "records.jsonl")] == ["firing", "resolved"]


@pytest.mark.integration
def test_api_error_rate_alert(cc, tmp_path: Path, make_inspector) -> None:
    clock = Clock()
    ins = make_inspector(
        {
            "alerts": [
                {
                    "name": "errors",
                    "kind": "api_error_rate",
                    "threshold": 0.3,
                    "window": "5m",
                    "min_events": 4,
                }
            ]
        },
        tmp_path,
        clock=clock,
    )
    a = session_attrs()
    ok = (
        "claude_code.api_request",
        {
            **a,
            "model": "m",
            "cost_usd": 0.1,
            "duration_ms": 1,
            "input_tokens": 1,
            "output_tokens": 1,
            "cache_read_tokens": 0,
            "cache_creation_tokens": 0,
        },
    )
    err = ("claude_code.api_error", {**a, "model": "m", "error": "overloaded", "duration_ms": 2})
    ins.observe("logs", cc.evaluate("logs", logs_request([err, err])))
    assert ins.alerts.active() == []  # 2 events: below min_events, no verdict yet
    [metrics] = fetch(ins, "/metrics")
    assert 'labctl_proxy_events_total{event="api_error"} 2' in metrics
    ins.observe("logs", cc.evaluate("logs", logs_request([ok, ok])))
    [firing] = ins.alerts.active()
    assert firing["value"] == 0.5
    clock.now += 10
    ins.observe("logs", cc.evaluate("logs", logs_request([ok] * 6)))
    assert ins.alerts.active() == []
    assert ins.alerts.snapshot()["alerts"][0]["state"] == "resolved"


@pytest.mark.integration
def test_session_cost_alert_per_session(cc, tmp_path: Path, make_inspector) -> None:
    clock = Clock()
    ins = make_inspector(
        {"alerts": [{"name": "cost", "kind": "session_cost", "threshold": 1.0, "idle": "10m"}]},
        tmp_path,
        clock=clock,
    )
    pts = [
        Point("claude_code.cost.usage", 0.6, {**session_attrs("a"), "model": "m"}),
        Point("claude_code.cost.usage", 0.2, {**session_attrs("b"), "model": "m"}),
    ]
    ins.observe("metrics", cc.evaluate("metrics", metrics_request(pts)))
    ins.observe("metrics", cc.evaluate("metrics", metrics_request(pts)))
    [firing] = ins.alerts.active()
    assert firing["labels"] == {"session_id": "a"} and firing["value"] == pytest.approx(1.2)
    [metrics] = fetch(ins, "/metrics")
    assert 'labctl_proxy_alert_firing{alert="cost",session_id="a"} 1' in metrics
    clock.now += 601  # idle session: resolved
    ins.refresh()
    assert ins.alerts.active() == []


def test_bad_alert_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LabError) as info:
        Inspector({"alerts": [{"name": "x", "kind": "cost_per_session", "threshold": 1}]}, tmp_path)
    assert "kind 'cost_per_session' is not known" in info.value.message and "session_cost" in (
        info.value.hint or ""
    )
    with pytest.raises(LabError) as info:
        Inspector({"alerts": [{"name": "x", "kind": "session_cost", "threshold": "high"}]}, tmp_path)
    assert "threshold" in info.value.message
    with pytest.raises(LabError):
        Inspector({"inspect": {"payloadz": 3}}, tmp_path)


def test_metrics_exposition_help_type_totals_and_proxy_counters(cc, tmp_path: Path, make_inspector) -> None:
    ins = make_inspector({"log": {"enabled": False}}, tmp_path)
    for _ in range(3):  # delta: 3 x 100 = 300
        ins.observe("metrics", cc.evaluate("metrics", metrics_request([tokens(100)])))
    for v in (50, 80, 80):  # cumulative in another session: 80
        ins.observe("metrics", cc.evaluate("metrics", metrics_request([tokens(v, "s2", "cumulative")])))
    stats = Stats()
    stats.received["metrics"] += 6
    stats.rejected[("metrics", "contract")] += 1

    def provider() -> dict[str, Any]:
        return {
            "mode": "observe",
            "upstream": {"state": "none"},
            "uptime_s": 3.0,
            "counters": stats.counters(),
            "gauges": {"queued": {"metrics": 0}, "spool_full": False, "overflow_policy": "reject"},
        }

    [text] = fetch(ins, "/metrics", stats=provider)
    assert "# HELP claude_code_token_usage_tokens_total Number of tokens used" in text
    assert "# TYPE claude_code_token_usage_tokens_total counter" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("claude_code_token_usage_tokens_total{")]
    by_session = {("s1" if 'session_id="s1"' in ln else "s2"): float(ln.rsplit(" ", 1)[1]) for ln in lines}
    assert by_session == {"s1": 300, "s2": 80}
    assert 'service_name="claude-code"' in lines[0] and 'type="input"' in lines[0]
    assert 'labctl_proxy_received_total{signal="metrics"} 6' in text
    assert 'labctl_proxy_rejected_total{signal="metrics",reason="contract"} 1' in text
    assert "# TYPE labctl_proxy_received_total counter" in text
    assert 'labctl_proxy_upstream_state{state="none"} 1' in text
    assert 'labctl_proxy_inspected_items_total{signal="metrics",verdict="ok"} 6' in text
    # every sample line parses as name{labels} value
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            float(ln.rsplit(" ", 1)[1])


def test_seed_contract_help_text_on_metrics(tmp_path: Path, make_inspector) -> None:
    seed = contract_from_text(
        "metrics:\n  otel_claude_code_token_usage_tokens_total:\n    metric_type: counter\n"
        "    labels: [model, type]\n    prometheus_format: |\n"
        "      # HELP otel_claude_code_token_usage_tokens_total Total tokens used\n"
        "      # TYPE otel_claude_code_token_usage_tokens_total counter\n"
    )
    ins = make_inspector({"log": {"enabled": False}}, tmp_path)
    ins.observe("metrics", seed.evaluate("metrics", metrics_request([tokens(7)])))
    [text] = fetch(ins, "/metrics")
    assert "# HELP otel_claude_code_token_usage_tokens_total Total tokens used" in text
    assert "otel_claude_code_token_usage_tokens_total{" in text


@pytest.mark.integration
def test_the_labs_proxy_config_has_valid_inspection_sections(tmp_path: Path, make_inspector) -> None:
    from labctl.proxy import config

    cfg = config.load(Path(__file__).resolve().parents[2] / "lab" / "proxy" / "proxy.yaml")
    ins = make_inspector(cfg.raw, tmp_path)
    assert {r.kind for r in ins.alerts.rules} == {"session_cost", "tokens_per_minute", "api_error_rate"}
    assert "user.email" in ins.redactor.attributes
