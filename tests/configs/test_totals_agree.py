"""End to end on a native module-3 lab: what the emulator sent == what the proxy counted == what Prometheus has.

Regression for a student's report: after `labctl emit --from-lab --sessions 3`, `labctl proxy sessions`
showed 18665 input tokens for a session and Prometheus 13701 (12300 vs 6674 for another). Claude Code's
(and the emulator's) delta counters export a point only for series that got a measurement, and the
Collector's prometheus exporter replaced, instead of adding, a delta that followed a gap. The lab's
Collector now converts with delta_to_cumulative (collector-configs/base.yaml).

The ground truth is the emulator's own plan: the same seed gives the same sessions and values
(labctl.emulator.session.plan_run), and the run's JSON summary proves every planned action was played and
every batch delivered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.emulator.runner import parse_models
from labctl.emulator.session import plan_run
from labctl.state import LabState
from tests.conftest import run_labctl

pytestmark = pytest.mark.integration

SEED = 7
SESSIONS = 3
DURATION_S = (
    16.0  # three 5 s export intervals (OTEL_METRIC_EXPORT_INTERVAL from `labctl env`) + the final flush
)
RATE = 40.0  # prompts per minute per session: many series, several with gaps between exports
ERROR_RATE = 0.03  # emit's default
MARKER = "totals-agree"
TOKEN_KEYS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cacheRead": "cache_read_tokens",
    "cacheCreation": "cache_creation_tokens",
}


EXPORT_INTERVAL_S = 5.0  # `labctl env`'s OTEL_METRIC_EXPORT_INTERVAL


def _sent_totals() -> tuple[dict[str, dict[str, float]], dict[str, float], int, int]:
    """Per session: tokens by type and cost, exactly as the emulator's plan for SEED sends them; the number
    of actions; and how many series (session + model, query_source, speed, effort) pause for more than two
    export intervals, so that at least one export certainly carries no point for them (the trap)."""
    plans = plan_run(SEED, SESSIONS, DURATION_S, RATE, parse_models(None), ERROR_RATE)
    tokens: dict[str, dict[str, float]] = {}
    cost: dict[str, float] = {}
    actions = 0
    seen_at: dict[tuple[Any, ...], list[float]] = {}
    for plan in plans:
        sid = plan.identity.session_id
        tokens[sid] = dict.fromkeys(TOKEN_KEYS, 0)
        cost[sid] = 0.0
        for action in plan.actions:
            actions += 1
            if action.kind == "api_request":
                d = action.data
                for token_type, key in TOKEN_KEYS.items():
                    tokens[sid][token_type] += d[key]
                cost[sid] += d["cost_usd"]
                seen_at.setdefault((sid, d["model"], d["query_source"], d["speed"], d["effort"]), []).append(
                    action.at
                )
    sparse = sum(any(b - a > 2 * EXPORT_INTERVAL_S for a, b in pairwise(t)) for t in seen_at.values())
    return tokens, cost, actions, sparse


def _prometheus(lab: LabState) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    base = lab.url("prometheus", "web")

    def query(promql: str) -> list[dict[str, Any]]:
        r = requests.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
        r.raise_for_status()
        return r.json()["data"]["result"]

    tokens: dict[str, dict[str, float]] = {}
    for row in query(
        f'sum by (session_id, type) (claude_code_token_usage_tokens_total{{lab_marker="{MARKER}"}})'
    ):
        tokens.setdefault(row["metric"]["session_id"], {})[row["metric"]["type"]] = float(row["value"][1])
    cost = {
        row["metric"]["session_id"]: float(row["value"][1])
        for row in query(f'sum by (session_id) (claude_code_cost_usage_USD_total{{lab_marker="{MARKER}"}})')
    }
    return tokens, cost


def _proxy(state_dir: Path) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    out = run_labctl("proxy", "sessions", "--json", state_dir=state_dir, timeout=60).stdout
    sessions = json.loads(out)
    tokens = {s["session_id"]: {k: float(v) for k, v in s["tokens"].items()} for s in sessions}
    return tokens, {s["session_id"]: float(s["cost_usd"]) for s in sessions}


def _agrees(
    sent: tuple[dict[str, dict[str, float]], dict[str, float]],
    got: tuple[dict[str, dict[str, float]], dict[str, float]],
    cost_tol: float,
) -> bool:
    sent_tokens, sent_cost = sent
    got_tokens, got_cost = got
    if set(got_tokens) != set(sent_tokens) or set(got_cost) != set(sent_cost):
        return False
    for sid, by_type in sent_tokens.items():
        want = {k: v for k, v in by_type.items() if v}  # a type never used has no series at all
        if {k: v for k, v in got_tokens[sid].items() if v} != want:
            return False
    return all(abs(got_cost[sid] - c) <= cost_tol for sid, c in sent_cost.items())


def _wait_agree(what: str, fetch: Callable[[], Any], sent: Any, cost_tol: float, timeout: float) -> Any:
    """Poll until `fetch()` equals what was sent; on timeout fail showing both (the numbers tell the story)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if _agrees(sent, got, cost_tol):
            return got
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} disagrees with what the emulator sent after {timeout:.0f}s\n"
                f"sent tokens: {sent[0]}\ngot  tokens: {got[0]}\nsent cost: {sent[1]}\ngot  cost: {got[1]}",
                pytrace=False,
            )
        time.sleep(0.5)


def test_emulator_proxy_and_prometheus_totals_agree(native_lab: Callable[..., LabState]) -> None:
    lab = native_lab("module-3")
    state_dir = lab.dir
    sent_tokens, sent_cost, planned_actions, sparse_series = _sent_totals()
    assert len(sent_tokens) == SESSIONS and all(sum(t.values()) > 0 for t in sent_tokens.values())
    assert sparse_series > 0, "this seed has no series with a gap: pick one that exercises the delta trap"

    result = run_labctl(
        "emit",
        "--from-lab",
        "--sessions",
        str(SESSIONS),
        "--seed",
        str(SEED),
        "--duration",
        str(DURATION_S),
        "--rate",
        str(RATE),
        "--error-rate",
        str(ERROR_RATE),
        "--marker",
        MARKER,
        "--json",
        "--quiet",
        "--fail-on-error",
        state_dir=state_dir,
        timeout=120,
    )
    summary = json.loads(result.stdout)
    # The plan above is what was sent: same seed and sessions, every action played, every batch delivered.
    assert summary["seed"] == SEED
    assert set(summary["sessions"]) == set(sent_tokens)
    assert summary["actions"] == planned_actions
    assert summary["shutdown_flushed"] is True
    assert all(e["failed"] == 0 for e in summary["exporters"]), summary["exporters"]

    sent = (sent_tokens, sent_cost)
    # The proxy saw every batch before emit's final flush returned; allow a moment for its bookkeeping.
    _wait_agree("`labctl proxy sessions --json`", lambda: _proxy(state_dir), sent, cost_tol=2e-6, timeout=10)
    # Prometheus: the Collector's 1 s batch, then the next 5 s scrape (lab/prometheus/prometheus.yml).
    _wait_agree(
        "Prometheus (sum by session_id, type)", lambda: _prometheus(lab), sent, cost_tol=1e-9, timeout=15
    )
