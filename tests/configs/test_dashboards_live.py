"""Every dashboard panel's query returns data from a real lab (`labctl up module-3 --runtime native`).

Grafana cannot run on this machine (no binary can be had), so the panels' PromQL is evaluated
against Prometheus directly, the way `labctl check --layer 4` does without Grafana. Claude-Code-shaped
metrics are sent with the OpenTelemetry Python SDK to the proxy, so every hop (proxy, Collector,
Prometheus) has data.
"""

from __future__ import annotations

import time

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

from labctl import promql
from labctl.checks.nodata import declared
from tests.configs.confhelpers import DASHBOARDS, wait_for
from tests.configs.dashboards import queries
from tests.configs.otlp_send import send_claude_code_event, send_claude_code_metrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Counted only when something goes wrong: absent on a healthy lab (dashboards/absent-when-healthy.yaml,
# the declarations `labctl check --layer 4` reads too).
ABSENT_WHEN_HEALTHY = {(dashboard, key) for dashboard, keys in declared(DASHBOARDS).items() for key in keys}


def test_every_panel_query_returns_data(native_lab) -> None:
    lab = native_lab("module-3")
    prom = promql.client(lab.url("prometheus", "web"))
    send_claude_code_metrics(
        GrpcMetricExporter(endpoint=lab.addr("proxy", "otlp_grpc"), insecure=True), marker="dashboards"
    )
    # Claude Code's events travel the logs pipeline (the "log records accepted" panel).
    send_claude_code_event(lab.addr("proxy", "otlp_grpc"), prompt="hello", marker="dashboards")
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
    assert len(ABSENT_WHEN_HEALTHY) == 3, ABSENT_WHEN_HEALTHY
    pending = [query for query in queries() if (query.dashboard, query.key) not in ABSENT_WHEN_HEALTHY]
    deadline = time.monotonic() + 60
    while True:
        empty = {query.id: _why_empty(prom, query) for query in pending}
        pending = [query for query in pending if empty[query.id]]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not pending, "panels without data:\n" + "\n".join(empty[query.id] for query in pending)


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
