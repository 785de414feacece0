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
    results = [CheckResult(1, "a", True), CheckResult(3, "b", False), CheckResult(2, "c", False),
               CheckResult(4, "d", True, skipped=True)]
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
    board = {"templating": {"list": [{"name": "model", "current": {"value": "$__all"}}]},
             "panels": [{"type": "row", "panels": [
                 {"title": "t", "targets": [{"refId": "A", "expr": 'rate(x{model=~"$model"}[$__rate_interval])'}]}]}]}
    assert panel_queries(board) == [("t", "A", 'rate(x{model=~".*"}[1m])')]


def test_collector_counter_names_match_with_or_without_suffixes() -> None:
    text = ("# TYPE otelcol_receiver_accepted_metric_points_total counter\n"
            'otelcol_receiver_accepted_metric_points_total{receiver="otlp",transport="grpc"} 7\n'
            'otelcol_receiver_accepted_metric_points_total{receiver="otlp",transport="http"} 3\n')
    samples = exposition.parse(text)
    assert exposition.total(samples, r"otelcol_receiver_accepted_metric_points(_total)?") == 10
    assert exposition.total(samples, r"otelcol_receiver_accepted_metric_points(_total)?", transport="http") == 3
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
