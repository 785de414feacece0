"""Session analytics: delta and cumulative exports give the same totals, nothing is counted twice."""

from __future__ import annotations

from typing import Any

import pytest

from labctl.contract import default_contract_path, load_contract
from labctl.contract.samples import Point, logs_request, metrics_request, session_attrs
from labctl.proxy.inspect.sessions import SessionTracker

S = 1_000_000_000
START = 1_700_000_000 * S


@pytest.fixture
def cc():
    return load_contract(default_contract_path())


def tokens(
    value: float,
    kind: str = "input",
    temporality: str = "delta",
    start: int = START,
    t: int = 0,
    sid: str = "s1",
) -> Point:
    return Point(
        "claude_code.token.usage",
        value,
        {**session_attrs(sid), "model": "m", "type": kind},
        temporality=temporality,
        start_ns=start,
        time_ns=START + t * S,
    )


def cost(value: float, temporality: str = "delta", start: int = START, sid: str = "s1") -> Point:
    return Point(
        "claude_code.cost.usage",
        value,
        {**session_attrs(sid), "model": "m"},
        temporality=temporality,
        start_ns=start,
    )


def feed(cc: Any, tracker: SessionTracker, batches: list[list[Point]]) -> dict[str, Any]:
    for points in batches:
        tracker.observe(cc.evaluate("metrics", metrics_request(points)), now=1000.0)
    return tracker.get("s1").to_dict()  # type: ignore[union-attr]


def test_delta_and_cumulative_give_the_same_totals(cc) -> None:
    deltas = [[tokens(100), cost(0.5)], [tokens(50), cost(0.25)], [tokens(25, "output")]]
    cumulative = [
        [tokens(100, temporality="cumulative"), cost(0.5, "cumulative")],
        [tokens(150, temporality="cumulative"), cost(0.75, "cumulative")],
        [tokens(150, temporality="cumulative"), tokens(25, "output", "cumulative"), cost(0.75, "cumulative")],
    ]
    d = feed(cc, SessionTracker(), deltas)
    c = feed(cc, SessionTracker(), cumulative)
    assert d["tokens"] == c["tokens"] == {"input": 150, "output": 25}
    assert d["cost_usd"] == c["cost_usd"] == 0.75
    assert d["tokens_total"] == 175


def test_cumulative_repeats_are_not_counted_twice(cc) -> None:
    same = [[tokens(300, temporality="cumulative")] for _ in range(5)]
    assert feed(cc, SessionTracker(), same)["tokens"] == {"input": 300}


def test_cumulative_reset_counts_the_new_run(cc) -> None:
    tracker = SessionTracker()
    # process restarts: new start time, counter starts over
    batches = [
        [tokens(100, temporality="cumulative")],
        [tokens(160, temporality="cumulative")],
        [tokens(10, temporality="cumulative", start=START + 500 * S)],
        [tokens(30, temporality="cumulative", start=START + 500 * S)],
    ]
    assert feed(cc, tracker, batches)["tokens"] == {"input": 190}
    # a value going down without a new start time is a reset too
    tracker2 = SessionTracker()
    batches = [
        [tokens(100, temporality="cumulative", start=0)],
        [tokens(40, temporality="cumulative", start=0)],
    ]
    assert feed(cc, tracker2, batches)["tokens"] == {"input": 140}
    assert tracker.counters.resets == 1 and tracker2.counters.resets == 1


def test_two_processes_sharing_a_session_id_are_separate_series(cc) -> None:
    tracker = SessionTracker()
    for version, value in (("1", 100), ("2", 40), ("1", 130), ("2", 70)):
        req = metrics_request(
            [tokens(value, temporality="cumulative")],
            resource={"service.name": "claude-code", "process.pid": version},
        )
        tracker.observe(cc.evaluate("metrics", req), now=1.0)
    assert tracker.get("s1").to_dict()["tokens"] == {"input": 200}  # 130 + 70, no cross-talk


def test_all_session_fields_from_metrics_and_events(cc) -> None:
    a = session_attrs("s1")
    tracker = SessionTracker()
    req = metrics_request(
        [
            Point("claude_code.lines_of_code.count", 40, {**a, "type": "added"}),
            Point("claude_code.lines_of_code.count", 4, {**a, "type": "removed"}),
            Point("claude_code.commit.count", 2, a),
            Point("claude_code.pull_request.count", 1, a),
            Point("claude_code.active_time.total", 30.5, {**a, "type": "user"}),
            Point("claude_code.active_time.total", 10.0, {**a, "type": "cli"}),
            Point("claude_code.code_edit_tool.decision", 3, {**a, "decision": "accept", "tool_name": "Edit"}),
            Point(
                "claude_code.code_edit_tool.decision", 1, {**a, "decision": "reject", "tool_name": "Write"}
            ),
            Point("claude_code.session.count", 1, {**a, "start_type": "fresh"}),
        ]
    )
    tracker.observe(cc.evaluate("metrics", req), now=5.0)
    events = logs_request(
        [
            ("claude_code.user_prompt", {**a, "prompt_length": 4}),
            (
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
            ),
            ("claude_code.api_error", {**a, "model": "m", "error": "overloaded", "duration_ms": 3}),
            (
                "claude_code.tool_decision",
                {**a, "tool_name": "Bash", "decision": "reject", "source": "user_reject"},
            ),
            ("claude_code.tool_result", {**a, "tool_name": "Bash", "success": "false", "duration_ms": 9}),
        ]
    )
    tracker.observe(cc.evaluate("logs", events), now=6.0)
    s = tracker.get("s1").to_dict()
    assert (s["lines_added"], s["lines_removed"], s["commits"], s["pull_requests"]) == (40, 4, 2, 1)
    assert s["active_time_s"] == 40.5 and s["active_time_by_type"] == {"cli": 10.0, "user": 30.5}
    assert s["edit_decisions"] == {"accept": 3, "reject": 1} and s["sessions_started"] == 1
    assert (s["prompts"], s["api_requests"], s["api_errors"]) == (1, 1, 1)
    assert s["tool_decisions"] == {"reject": 1} and (s["tool_results"], s["tool_failures"]) == (1, 1)
    assert s["user"] == "acct-1"
    assert tracker.last_api_errors == 1 and tracker.last_api_requests == 1


def test_session_store_is_bounded(cc) -> None:
    tracker = SessionTracker(max_sessions=3)
    for i in range(5):
        tracker.observe(cc.evaluate("metrics", metrics_request([tokens(1, sid=f"x{i}")])), now=float(i))
    assert list(tracker.sessions) == ["x2", "x3", "x4"]


def test_tokens_without_session_id_still_count_for_the_rate(cc) -> None:
    """OTEL_METRICS_INCLUDE_SESSION_ID=false: no session to add to, but the token rate alert sees them."""
    tracker = SessionTracker()
    req = metrics_request([Point("claude_code.token.usage", 500, {"model": "m", "type": "input"})])
    tracker.observe(cc.evaluate("metrics", req), now=1.0)
    assert tracker.sessions == {} and tracker.last_tokens == 500
