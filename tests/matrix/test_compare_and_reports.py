"""Observed-vs-expected comparison and the four report formats."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from labctl.matrix.cases import load_cases
from labctl.matrix.report import to_html, to_markdown, write_reports
from labctl.matrix.verdict import CaseResult, compare

CASES = {c.id: c for c in load_cases()}


def observed(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "outcome": "failed",
        "seen": {},
        "retried": 0,
        "gives_up_s": None,
        "first_export_s": None,
        "metric_exports": 0,
        "notices": [],
        "messages": [],
        "startup_error": None,
    }
    base.update(kw)
    return base


def test_matching_observation_has_no_mismatch() -> None:
    case = CASES["auth-invalid-grpc"]
    obs = observed(
        messages=[
            ("ERROR x: Failed to export metrics to 127.0.0.1:1, error code: StatusCode.UNAUTHENTICATED")
        ],
        gives_up_s=0.02,
    )
    assert compare(case, obs) == []


def test_each_expectation_is_checked() -> None:
    case = CASES["auth-invalid-grpc"]
    obs = observed(
        outcome="delivered",
        seen={"collector": True},
        retried=3,
        gives_up_s=4.0,
        messages=["ERROR StatusCode.UNAVAILABLE"],
    )
    problems = " | ".join(compare(case, obs))
    for fragment in (
        "outcome: expected failed",
        "unexpectedly seen in collector",
        "no message matching",
        "retries: expected none",
        "gave up after 4.0s",
    ):
        assert fragment in problems, fragment


def test_timing_and_notice_expectations() -> None:
    case = CASES["interval-units"]
    problems = " | ".join(
        compare(case, observed(outcome="delivered", seen={"collector": True}, metric_exports=2))
    )
    assert "no configuration notice" in problems and "2 metric exports" in problems
    case = CASES["interval-5s"]
    assert "first export at 1.0s" in " | ".join(
        compare(case, observed(outcome="delivered", seen={"collector": True}, first_export_s=1.0))
    )


def results() -> list[CaseResult]:
    ok = CaseResult(
        CASES["console-stdout"],
        True,
        observed(outcome="delivered", seen={"stdout": True}),
        [],
        3.2,
        Path("/tmp/x"),
    )
    bad_obs = observed(outcome="nothing")
    bad = CaseResult(
        CASES["otlp-grpc-local"],
        False,
        bad_obs,
        compare(CASES["otlp-grpc-local"], bad_obs),
        4.0,
        Path("/tmp/y"),
    )
    return [ok, bad]


def test_reports_say_the_same_thing(tmp_path: Path) -> None:
    paths = write_reports(results(), 12.0, tmp_path, tmp_path / "docs" / "REPORT.md")
    data = json.loads(paths["json"].read_text())
    assert (data["total"], data["expected"], data["unexpected"]) == (2, 1, 1)
    md = paths["markdown"].read_text()
    assert "`console-stdout`" in md and "✗ outcome: expected delivered, observed nothing" in md
    assert "labctl matrix run" in md  # says how to regenerate it
    page = paths["html"].read_text()
    assert "otlp-grpc-local" in page and "1 unexpected" in page


def test_html_is_self_contained() -> None:
    page = to_html(results(), 1.0)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<style>" in page and "<script>" in page
    assert to_markdown(results(), 1.0).count("\n| ") >= 3


def test_hops_must_agree() -> None:
    case = CASES["otlp-proxy-to-collector"]
    base = {"outcome": "delivered", "seen": {"proxy": True, "collector": True}}
    same = observed(
        **base,
        proxy={"accepted": {"metrics": 10, "logs": 4}},
        collector={"accepted_metrics": {"grpc": 10.0}, "accepted_logs": {"grpc": 4.0}},
    )
    assert compare(case, same) == []
    lost = observed(
        **base,
        proxy={"accepted": {"metrics": 10, "logs": 4}},
        collector={"accepted_metrics": {"grpc": 7.0}, "accepted_logs": {"grpc": 4.0}},
    )
    assert compare(case, lost) == ["metrics: proxy accepted 10, Collector accepted 7"]
