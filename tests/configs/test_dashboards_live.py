"""Every dashboard panel's query returns data from a real lab (`labctl up module-3 --runtime native`).

Grafana cannot run on this machine (no binary can be had), so the panels' PromQL is evaluated
against Prometheus directly, the way `labctl check --layer 4` does without Grafana. Claude-Code-shaped
metrics are sent with the OpenTelemetry Python SDK to the proxy, so every hop (proxy, Collector,
Prometheus) has data.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

from labctl import promql
from labctl.checks import layer4
from labctl.checks.context import CheckContext
from labctl.checks.nodata import declared
from labctl.checks.result import CheckResult
from labctl.model import load_model
from tests.configs.confhelpers import DASHBOARDS, wait_for
from tests.configs.dashboards import queries
from tests.configs.otlp_send import send_claude_code_event, send_claude_code_metrics, send_tool_decisions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Counted only when something goes wrong: absent on a healthy lab (dashboards/absent-when-healthy.yaml,
# the declarations `labctl check --layer 4` reads too).
ABSENT_WHEN_HEALTHY = {(dashboard, key) for dashboard, keys in declared(DASHBOARDS).items() for key in keys}


def test_every_panel_query_returns_data(native_lab, tmp_path) -> None:
    lab = native_lab("module-3")
    prom = promql.client(lab.url("prometheus", "web"))
    send_claude_code_metrics(
        GrpcMetricExporter(endpoint=lab.addr("proxy", "otlp_grpc"), insecure=True), marker="dashboards"
    )
    # Claude Code's events travel the logs pipeline (the "log records accepted" panel).
    send_claude_code_event(lab.addr("proxy", "otlp_grpc"), prompt="hello", marker="dashboards")
    # Tool permission decisions (events too), which the Collector counts into a metric.
    send_tool_decisions(
        lab.addr("proxy", "otlp_grpc"),
        [
            ("Write", "accept", "config"),
            ("Bash", "reject", "user_reject"),
            ("Write", "accept", "user_temporary"),
        ],
        marker="dashboards",
    )
    wait_for(
        "the marker in Prometheus (proxy -> Collector -> Prometheus)",
        lambda: prom.custom_query('claude_code_session_count_total{lab_marker="dashboards"}'),
        timeout=90,
    )
    # Module 3's naming facts: the resource's service.name is `exported_job` (`job` is the scrape job),
    # the other resource attributes are labels of target_info.
    series = prom.custom_query('claude_code_session_count_total{lab_marker="dashboards"}')[0]["metric"]
    assert (series["job"], series["exported_job"]) == ("collector", "claude-code"), series
    assert prom.custom_query('target_info{job="collector", exported_job="claude-code"}')
    # rate() needs two samples of each series after the data arrived: at least two scrapes (5 s apart).
    # A loaded machine scrapes late, so each query is asked again until it answers, for up to a minute.
    assert len(ABSENT_WHEN_HEALTHY) == 6, ABSENT_WHEN_HEALTHY
    pending = [query for query in queries() if (query.dashboard, query.key) not in ABSENT_WHEN_HEALTHY]
    deadline = time.monotonic() + 60
    while True:
        empty = {query.id: _why_empty(prom, query) for query in pending}
        pending = [query for query in pending if empty[query.id]]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not pending, "panels without data:\n" + "\n".join(empty[query.id] for query in pending)
    _tool_decisions_by_outcome(prom)
    _a_fallback_fails_layer_4_naming_its_panel(lab, tmp_path)


def _tool_decisions_by_outcome(prom) -> None:
    """The tool-decision panel (absent on a lab no tool ran in) counts the decisions sent, per tool and
    outcome: each first sample of the count connector's series counts too (one decision, no increase)."""
    (query,) = [q for q in queries() if q.panel == "Tool decisions by tool and outcome"]

    def counted() -> dict[tuple[str, str], float]:
        return {
            (r["metric"]["tool_name"], r["metric"]["decision"]): float(r["value"][1])
            for r in prom.custom_query(query.expr)
        }

    wanted = {("Write", "accept"): 2.0, ("Bash", "reject"): 1.0}
    deadline = time.monotonic() + 30
    while (found := counted()) != wanted and time.monotonic() < deadline:
        time.sleep(1)
    assert found == wanted, f"the panel's query answers {found}, not the decisions sent"


def _a_fallback_fails_layer_4_naming_its_panel(lab, tmp_path) -> None:
    """Layer 4's no-data rule on this lab's real data: a copy of the dashboards passes; the same copy
    with `or vector(0)` added to one panel's query fails, naming that panel, though it still has data.
    (`labctl check --layer 4` reads the dashboards of the model's root: here a copy of them.)"""
    root = tmp_path / "root"
    shutil.copytree(DASHBOARDS, root / "dashboards")
    cx = CheckContext(
        lab=lab,
        model=dataclasses.replace(load_model(), root=root),
        running=load_model().stage_services(lab.stage, lab.runtime),
        reached={"prometheus": True},
    )

    def verdicts() -> dict[str, CheckResult]:
        return {r.name: r for r in layer4.check(cx, grafana_running=False)}

    clean = verdicts()
    boards = {f"dashboard {p.stem}" for p in DASHBOARDS.glob("*.json")}
    assert boards <= set(clean) and all(clean[b].ok for b in boards), [clean[b] for b in boards]

    path = root / "dashboards" / "claude-code-usage.json"
    board = json.loads(path.read_text())
    title, ref, _ = next(q for q in layer4.panel_queries(board) if "vector" not in q[2])
    panel = next(p for p in layer4.panels(board) if p.get("title") == title)
    target = next(t for t in panel["targets"] if t.get("refId", "A") == ref)
    target["expr"] = f"({target['expr']}) or vector(0)"
    path.write_text(json.dumps(board))
    hidden = verdicts()["dashboard claude-code-usage"]
    assert not hidden.ok and "always answer" in (hidden.cause or ""), hidden
    named = [e for e in hidden.evidence if e.startswith(f"{title} [{ref}]: can never show 'No data'")]
    assert named and "or vector(" in named[0], hidden.evidence
    assert verdicts()["dashboard pipeline-health"].ok  # the other dashboard is untouched


def _why_empty(prom, query) -> str:
    """What of one panel query has no data ("" when all of it does)."""
    if not prom.custom_query(query.expr):
        return f"{query.id}: {query.expr}"
    if query.range:
        end = time.time()
        if not prom.custom_query_range(query.expr, start_time=_dt(end - 300), end_time=_dt(end), step="5s"):
            return f"{query.id} (range): {query.expr}"
    return ""


def _dt(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)
