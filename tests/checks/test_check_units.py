"""Check building blocks against real inputs: the lab's dashboards, exposition text, local sockets."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from labctl.checks import exposition
from labctl.checks.layer4 import panel_queries
from labctl.checks.result import CheckResult, exit_code, first_failing_layer
from labctl.checks.upstream import diagnose
from labctl.state import find_free_ports

REPO = Path(__file__).resolve().parents[2]


def test_exit_code_names_the_first_failing_layer() -> None:
    results = [
        CheckResult(1, "a", True),
        CheckResult(3, "b", False),
        CheckResult(2, "c", False),
        CheckResult(4, "d", True, skipped=True),
    ]
    assert first_failing_layer(results) == 2
    assert exit_code(results) == 12
    assert exit_code([CheckResult(1, "a", True), CheckResult(4, "x", False, skipped=True)]) == 0
    assert CheckResult(4, "x", False, skipped=True).to_dict()["verdict"] == "skip"


def test_every_dashboard_panel_yields_a_promql_query() -> None:
    for path in sorted((REPO / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        queries = panel_queries(board)
        assert queries, path.name
        for title, _ref, expr in queries:
            assert "$" not in expr, (path.name, title, expr)  # every variable substituted


def test_panel_variables_are_substituted() -> None:
    board = {
        "templating": {"list": [{"name": "model", "current": {"value": "$__all"}}]},
        "panels": [
            {
                "type": "row",
                "panels": [
                    {
                        "title": "t",
                        "targets": [{"refId": "A", "expr": 'rate(x{model=~"$model"}[$__rate_interval])'}],
                    }
                ],
            }
        ],
    }
    assert panel_queries(board) == [
        ("t", "A", 'rate(x{model=~".*"}[20s])')
    ]  # Grafana's $__rate_interval: 4 × the lab's 5 s scrape


def test_collector_counter_names_match_with_or_without_suffixes() -> None:
    text = (
        "# TYPE otelcol_receiver_accepted_metric_points_total counter\n"
        'otelcol_receiver_accepted_metric_points_total{receiver="otlp",transport="grpc"} 7\n'
        'otelcol_receiver_accepted_metric_points_total{receiver="otlp",transport="http"} 3\n'
    )
    samples = exposition.parse(text)
    assert exposition.total(samples, r"otelcol_receiver_accepted_metric_points(_total)?") == 10
    assert (
        exposition.total(samples, r"otelcol_receiver_accepted_metric_points(_total)?", transport="http") == 3
    )
    assert exposition.total(samples, r"otelcol_exporter_sent_metric_points(_total)?") is None


def test_diagnose_refused_port() -> None:
    port = find_free_ports(1)[0]
    d = diagnose(f"http://127.0.0.1:{port}", "grpc", {}, {"otlp_grpc": 4317}, 500)
    assert not d.ok and d.playbook == "upstream-unreachable"
    assert "connection refused" in d.cause and "otlp_grpc=4317" in d.cause


def test_diagnose_unresolvable_host() -> None:
    d = diagnose("http://collector.invalid:4317", "grpc", {}, {}, 500)
    assert "does not resolve" in d.cause and d.playbook == "upstream-unreachable"


def test_diagnose_black_hole_hangs() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()  # accepts (kernel backlog) and never answers: what a partition looks like
    try:
        d = diagnose(f"http://127.0.0.1:{srv.getsockname()[1]}", "grpc", {}, {}, 500)
        assert "hang" in d.cause and d.playbook == "upstream-unreachable"
    finally:
        srv.close()


def test_diagnose_invalid_url() -> None:
    assert "not a valid" in diagnose("htp//collector:4317", "grpc", {}, {}, 500).cause


def test_every_playbook_the_checks_name_exists() -> None:
    import re

    from labctl.checks.playbooks import PLAYBOOKS, playbook_path

    used = set()
    for path in (REPO / "labctl" / "checks").glob("*.py"):
        used |= set(re.findall(r'playbook="([a-z-]+)"', path.read_text()))
        used |= set(re.findall(r'Diagnosis\([^)]*?"(upstream-[a-z]+)"', path.read_text(), re.DOTALL))
    assert used and used <= set(PLAYBOOKS), used - set(PLAYBOOKS)
    for name in PLAYBOOKS:
        assert playbook_path(name, REPO).is_file(), name


def test_firing_alert_notes_follow_the_rule() -> None:
    from labctl.checks.layer3 import fired_at, resolve_note

    plain = {
        "labels": {"alertname": "LabScrapeTargetDown"},
        "rule": {"query": "up == 0", "duration": 15, "interval": 5},
    }
    note = resolve_note(plain)
    assert "`up == 0`" in note and "still resolving" in note and "every 5s" in note
    assert "window" not in note and "rate" not in note
    windowed = {
        "labels": {"alertname": "ProxyUpstreamFailing"},
        "rule": {"query": "sum(rate(labctl_proxy_retries_total[1m])) > 0", "interval": 5},
    }
    assert "looks back 1m" in resolve_note(windowed)
    # activeAt is when the condition became true; it fires `for:` later.
    alert = {"activeAt": "2026-11-27T12:00:00.123456789Z"}
    assert fired_at(alert, {"duration": 15}) == (
        "condition true since 12:00:00Z, firing since 12:00:15Z (for: 15s)"
    )
    assert fired_at(alert, {}) == "firing since 12:00:00Z"


def test_a_warning_row_passes_but_is_shown_as_warn() -> None:
    row = CheckResult(3, "alert rules & alerts", True, warning=True)
    assert row.verdict == "warn" and exit_code([row]) == 0


def test_log_evidence_comes_from_the_latest_start_only() -> None:
    from labctl.checks.probe import error_lines

    log = (
        "old error: connection refused\n=== labctl 2026-11-27T12:00:00: starting proxy\n"
        "info: listening\n=== labctl 2026-11-27T12:01:00: starting proxy\n"
        "error: upstream 'grpc://x:1' is not an http(s) URL\n"
    )
    assert error_lines(log) == ["error: upstream 'grpc://x:1' is not an http(s) URL"]


def test_tables_wrap_long_words_instead_of_truncating() -> None:
    from rich.console import Console

    from labctl import ui

    long_fix = "set LABCTL_GRAFANA_BIN=/some/very/long/unpacked/archive/path/bin/grafana-server-binary"
    saved = ui.console
    ui.console = Console(width=80, record=True, force_terminal=False)
    try:
        ui.table(["check", "fix"], [["binary grafana", long_fix]])
        text = ui.console.export_text()
    finally:
        ui.console = saved
    assert "…" not in text
    assert (
        "".join(line.strip("│ ").replace("│", "").strip() for line in text.splitlines()).count(
            "grafana-server"
        )
        == 1
    )


def test_a_target_scraped_through_the_scrape_relay_says_so_and_an_overdue_scrape_is_noticed() -> None:
    import time

    from labctl.checks.layer3 import _via
    from labctl.scrape_targets import Target

    relayed = {"scrapeUrl": "http://127.0.0.1:18889/metrics", "labels": {"instance": "127.0.0.1:8889"}}
    assert _via(Target.parse(relayed)) == " (scrape relay for 127.0.0.1:8889)"
    direct = {"scrapeUrl": "http://127.0.0.1:4320/metrics", "labels": {"instance": "127.0.0.1:4320"}}
    assert _via(Target.parse(direct)) == ""

    def at(age: float, health: str = "up") -> Target:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - age)) + ".000000000Z"
        return Target.parse({"health": health, "lastScrape": stamp, "scrapeInterval": "5s"})

    assert not at(2).overdue(5) and at(8).overdue(5)  # a scrape started 3 s ago has not finished
    assert not at(8, "down").overdue(5), "a down target is not stale, it failed"
    never = Target.parse({"health": "up", "lastScrape": "0001-01-01T00:00:00Z"})
    assert not never.overdue(5), "never scraped yet"


def test_layer_2_evidence_reads_as_words_not_python_or_cut_json() -> None:
    from labctl.checks.evidence_text import health_text, spool_text

    assert spool_text({"metrics": 14, "logs": 1, "traces": 4}) == "14 metric points, 1 log record, 4 spans"
    assert spool_text({"metrics": 0, "logs": 2, "traces": 0}) == "2 log records"
    assert spool_text({"metrics": 0, "logs": 0, "traces": 0}) == "none"
    body = '{"status":"Server available","upSince":"2026-12-05T07:53:35.807385749Z","uptime":"2.602548252s"}'
    assert health_text(body) == "Server available, up 2.6s"
    assert (
        health_text('{"status":"Server available","uptime":"1h2m3.456s"}') == "Server available, up 1h2m3.5s"
    )
    assert health_text("not json at all") == "not json at all"
