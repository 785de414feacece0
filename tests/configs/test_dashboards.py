"""Grafana provisioning and dashboards, checked without Grafana (no Grafana binary can run here; the
docker runtime runs the real one). Structure, datasource uids, and every panel query parsed by promtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from labctl.checks.layer4 import _BUILTINS
from labctl.model import load_model
from tests.configs.confhelpers import DASHBOARDS, REPO, binary
from tests.configs.dashboards import DASHBOARD_FILES, DATASOURCE_UID, datasource_uids, load, panels, queries

PROVISIONING = DASHBOARDS / "provisioning"
# The PromQL features the lab's Prometheus runs with (lab/lab.yaml's --enable-feature).
PROMETHEUS_FEATURES = next(
    a.split("=", 1)[1]
    for a in load_model(REPO).service("prometheus").native.args
    if a.startswith("--enable-feature=")
)


def substitute(expr: str) -> str:
    for key, value in _BUILTINS.items():
        expr = expr.replace(key, value)
    return expr


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_datasource_is_provisioned_with_the_fixed_uid() -> None:
    files = sorted((PROVISIONING / "datasources").glob("*.yaml"))
    assert files
    sources = [ds for f in files for ds in _yaml(f)["datasources"]]
    assert all(_yaml(f)["apiVersion"] == 1 for f in files)
    (prom,) = [ds for ds in sources if ds["uid"] == DATASOURCE_UID]
    assert prom["type"] == "prometheus"
    assert prom["access"] == "proxy"
    assert prom["isDefault"] is True
    # Grafana expands $VAR/${VAR} (no defaults): both runtimes must set LAB_PROMETHEUS_URL.
    assert prom["url"] == "${LAB_PROMETHEUS_URL}"


def test_both_runtimes_set_the_variables_provisioning_reads() -> None:
    grafana = load_model(REPO).service("grafana")
    # Along Grafana's hop to Prometheus: natively the query relay (so the hop can be cut), in docker the
    # Prometheus container.
    assert grafana.env["LAB_PROMETHEUS_URL"] == "http://{hop_addr:prometheus.web}"
    assert grafana.env["LAB_DASHBOARDS_DIR"] == "{repo}/dashboards"
    assert grafana.env["GF_PATHS_PROVISIONING"] == "{repo}/dashboards/provisioning"
    assert grafana.env["LAB_ALERTMANAGER_URL"] == "http://{addr:alertmanager.web}"
    services = _yaml(REPO / "compose" / "module-4.yml")["services"]
    compose = services["grafana"]["environment"]
    assert compose["LAB_ALERTMANAGER_URL"] == "http://alertmanager:9093"
    # In Docker, Grafana reaches Alertmanager over a network both are on.
    assert set(services["grafana"]["networks"]) & set(services["alertmanager"]["networks"])
    assert compose["LAB_PROMETHEUS_URL"] == "http://prometheus:9090"
    assert compose["LAB_DASHBOARDS_DIR"] == "/lab/dashboards"
    assert compose["GF_PATHS_PROVISIONING"] == "/lab/dashboards/provisioning"


def test_grafana_alerts_are_routed_to_the_labs_alertmanager() -> None:
    # Grafana cannot run here: the files are checked for what Grafana's provisioning reads. One contact
    # point of Alertmanager's type at the URL both runtimes set, the root policy sending to it, and no rule
    # that picks another route (notification_settings) or a contact point that is not provisioned.
    docs = {f.name: _yaml(f) for f in sorted((PROVISIONING / "alerting").glob("*.yaml"))}
    points = [p for d in docs.values() for p in d.get("contactPoints") or []]
    (point,) = points
    (receiver,) = point["receivers"]
    assert receiver["type"] == "prometheus-alertmanager" and receiver["uid"]
    assert receiver["settings"] == {"url": "${LAB_ALERTMANAGER_URL}"}
    assert receiver["disableResolveMessage"] is False  # resolved alerts reach the notifications view too
    (policy,) = [p for d in docs.values() for p in d.get("policies") or []]
    assert policy["receiver"] == point["name"] and policy["orgId"] == point["orgId"] == 1
    assert "routes" not in policy  # every Grafana alert takes the root policy
    rules = [r for d in docs.values() for g in d.get("groups") or [] for r in g["rules"]]
    assert rules and not [r["uid"] for r in rules if "notification_settings" in r]


def test_the_trace_and_event_stores_are_provisioned_with_fixed_uids() -> None:
    sources = {
        ds["uid"]: ds for f in (PROVISIONING / "datasources").glob("*.yaml") for ds in _yaml(f)["datasources"]
    }
    assert sources["lab-jaeger"]["type"] == "jaeger" and sources["lab-jaeger"]["url"] == "${LAB_JAEGER_URL}"
    # A plugin datasource (installed into Grafana's plugins folder; dashboards/README.md says how offline).
    assert sources["lab-victorialogs"]["type"] == "victoriametrics-logs-datasource"
    assert sources["lab-victorialogs"]["url"] == "${LAB_VICTORIALOGS_URL}"
    # Jaeger's trace view links a span to its session's events by the shared session.id.
    to_logs = sources["lab-jaeger"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "lab-victorialogs" and "session.id" in to_logs["query"]
    # Both runtimes point them at the stores: natively the host ports, in Docker the service names.
    grafana = load_model(REPO).service("grafana")
    assert grafana.env["LAB_JAEGER_URL"] == "http://{addr:jaeger.query}"
    assert grafana.env["LAB_VICTORIALOGS_URL"] == "http://{addr:victorialogs.http}"
    compose = _yaml(REPO / "compose" / "module-4.yml")["services"]
    assert compose["grafana"]["environment"]["LAB_JAEGER_URL"] == "http://jaeger:16686"
    assert compose["grafana"]["environment"]["LAB_VICTORIALOGS_URL"] == "http://victorialogs:9428"
    assert {"store-query"} <= set(compose["jaeger"]["networks"]) & set(compose["grafana"]["networks"])
    assert {"store-query"} <= set(compose["victorialogs"]["networks"]) & set(compose["grafana"]["networks"])


def test_cost_by_session_links_to_that_sessions_trace_and_events() -> None:
    import json
    import urllib.parse

    board = load(DASHBOARDS / "claude-code-usage.json")
    (panel,) = [p for p in panels(board) if p["title"] == "Cost by session (top 10)"]
    (override,) = panel["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "Field"}  # the reduce transform's series name
    (links,) = [prop["value"] for prop in override["properties"] if prop["id"] == "links"]
    by_uid = {}
    for link in links:
        url = urllib.parse.urlsplit(link["url"])
        assert url.path == "/explore"  # relative: right whatever port Grafana has
        pane = json.loads(urllib.parse.parse_qs(url.query)["panes"][0])["a"]
        (query,) = pane["queries"]
        by_uid[pane["datasource"]] = query
        assert query["datasource"]["uid"] == pane["datasource"]
    # The session id, as the row shows it, becomes Jaeger's tag and VictoriaLogs' field filter.
    assert by_uid["lab-jaeger"]["tags"] == 'session.id="${__data.fields.Field}"'
    assert by_uid["lab-jaeger"]["service"] == "claude-code"
    assert by_uid["lab-victorialogs"]["expr"] == 'session.id:"${__data.fields.Field}"'


def test_dashboard_provider_loads_the_dashboards_folder() -> None:
    doc = _yaml(PROVISIONING / "dashboards" / "lab.yaml")
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${LAB_DASHBOARDS_DIR}"
    assert provider["allowUiUpdates"] is False
    # The model lists what Grafana mounts/reads: every dashboard file is declared there.
    config = set(load_model(REPO).service("grafana").config)
    assert {f"dashboards/{p.name}" for p in DASHBOARD_FILES} <= config


def test_two_dashboards_with_fixed_uids() -> None:
    uids = {load(p)["uid"] for p in DASHBOARD_FILES}
    assert uids == {"claude-code-usage", "pipeline-health"}


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_panel_uses_the_provisioned_datasource(path: Path) -> None:
    dash = load(path)
    assert set(datasource_uids(dash)) == {DATASOURCE_UID}
    assert dash["templating"]["list"] == [], "template variables would break direct PromQL evaluation"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dash):
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        assert panel.get("description"), f"{panel['title']}: say what the panel shows"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            # Grafana's builtins only ($__range, $__rate_interval), which every evaluation here fills in.
            assert "$" not in substitute(target["expr"]), (
                f"{panel['title']}: template variable in {target['expr']}"
            )


def test_pipeline_dashboard_covers_each_layer() -> None:
    dash = load(DASHBOARDS / "pipeline-health.json")
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert [r.split(":")[0] for r in rows] == ["Layer 1", "Layer 2", "Layer 3"]


@pytest.mark.integration
def test_every_query_parses(tmp_path: Path) -> None:
    # promtool parses PromQL offline when the queries are recording rules.
    # Grafana's builtins ($__range ...) substituted as labctl's layer-4 check does; the features the lab's
    # Prometheus runs with (lab/lab.yaml) enabled.
    rules = [{"record": f"lab:panel_query_{i}", "expr": substitute(q.expr)} for i, q in enumerate(queries())]
    alert_exprs = [
        d["model"]["expr"]
        for f in (PROVISIONING / "alerting").glob("*.yaml")
        for g in _yaml(f).get("groups") or []
        for r in g["rules"]
        for d in r["data"]
        if d["datasourceUid"] == DATASOURCE_UID
    ]
    rules += [{"record": f"lab:grafana_alert_{i}", "expr": e} for i, e in enumerate(alert_exprs)]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(path), f"--enable-feature={PROMETHEUS_FEATURES}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.integration
def test_promtool_rejects_a_bad_query(tmp_path: Path) -> None:
    # The parse check above can fail: a broken expression is refused.
    path = tmp_path / "bad.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "x", "expr": "sum(rate(a[1m]"}]}]})
    )
    result = subprocess.run(
        [str(binary("promtool")), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_grafana_alert_rules_are_well_formed() -> None:
    files = sorted((PROVISIONING / "alerting").glob("*.yaml"))
    assert any("groups" in _yaml(f) for f in files)
    for f in files:
        doc = _yaml(f)
        assert doc["apiVersion"] == 1
        for group in doc.get("groups") or []:
            assert group["folder"] and group["interval"]
            for rule in group["rules"]:
                ref_ids = {d["refId"] for d in rule["data"]}
                assert rule["condition"] in ref_ids
                assert {d["datasourceUid"] for d in rule["data"]} <= {DATASOURCE_UID, "__expr__"}
                for d in rule["data"]:
                    if d["datasourceUid"] == "__expr__":
                        assert d["model"]["expression"] in ref_ids
                assert rule["uid"] and rule["title"] and rule["for"]
                assert {"summary", "description"} <= set(rule["annotations"])


@pytest.mark.integration
def test_dashboard_totals_count_across_a_counter_reset_and_a_vanished_series(tmp_path: Path) -> None:
    # What a Collector reload does to Prometheus' view (promtool's rule unit tests, offline): session a's
    # counter restarts from 0 (delta_to_cumulative's totals start again), session b's series vanishes
    # (its exporter no longer offers it). `sum(...)` drops to 15; the dashboard's query still says 245.
    tokens = next(q.expr for q in queries() if q.panel == "Tokens")
    (tmp_path / "none.yml").write_text("groups: []\n")
    series = "claude_code_token_usage_tokens_total"
    cases = {
        "rule_files": ["none.yml"],
        "evaluation_interval": "5s",
        "tests": [
            {
                "interval": "5s",
                "input_series": [
                    {"series": f'{series}{{session_id="a",type="input"}}', "values": "10 20 30 stale 5 15"},
                    {"series": f'{series}{{session_id="b",type="input"}}', "values": "100 200 stale"},
                ],
                "promql_expr_test": [
                    {
                        "expr": f"sum({series})",
                        "eval_time": "25s",
                        "exp_samples": [{"labels": "{}", "value": 15}],
                    },
                    {
                        "expr": substitute(tokens),
                        "eval_time": "25s",
                        "exp_samples": [{"labels": "{}", "value": 245}],
                    },
                    {
                        "expr": substitute(tokens),
                        "eval_time": "5s",
                        "exp_samples": [{"labels": "{}", "value": 220}],
                    },
                ],
            },
            {
                # A series that began before the dashboard's range counts only what it added inside it: the
                # stat is the increase over the range the reader picked ($__range, 1h here), not a lifetime total.
                "interval": "5s",
                "input_series": [
                    {"series": f'{series}{{session_id="old",type="input"}}', "values": "1000+0x800 1010"}
                ],
                "promql_expr_test": [
                    {
                        "expr": substitute(tokens),
                        "eval_time": "4005s",
                        "exp_samples": [{"labels": "{}", "value": 10}],
                    },
                ],
            },
        ],
    }
    path = tmp_path / "totals.test.yml"
    path.write_text(yaml.safe_dump(cases))
    result = subprocess.run(
        [str(binary("promtool")), f"--enable-feature={PROMETHEUS_FEATURES}", "test", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_panels_follow_the_labs_query_rules() -> None:
    # Module 3's rules: a stat shows the increase over the range the reader picked, a rate's window comes
    # from Grafana ($__rate_interval: at least 4 scrape intervals), never a fixed window.
    for path in DASHBOARD_FILES:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                expr = target["expr"]
                windows = re.findall(r"\[([^\]]+)\]", expr)
                if "rate(" in expr:
                    assert "$__rate_interval" in windows, (panel["title"], expr)
                if panel["type"] == "stat" and "increase(" in expr:
                    assert set(windows) == {"$__range", "5m"} or set(windows) == {"$__range"}, (
                        panel["title"],
                        expr,
                    )
                assert not re.search(r"\[\d+[smhd]\]", expr.replace("[5m] offset", "")), (
                    panel["title"],
                    expr,
                )


def test_no_grafana_alert_rule_treats_no_data_as_ok() -> None:
    # An outage (no data at all) must not read as "all is well" and silence the alert.
    for f in (PROVISIONING / "alerting").glob("*.yaml"):
        for group in _yaml(f).get("groups") or []:
            for rule in group["rules"]:
                assert rule["noDataState"] != "OK", (f.name, rule["title"])


def test_no_panel_query_can_hide_an_outage() -> None:
    # Layer 4's rule: a query that always answers (`or vector(0)`, `… * 0`) shows 0 when the pipeline is
    # broken. Only a query declared "absent when healthy" may have one; every declaration names a query.
    from labctl.checks.layer4 import always_answering, panel_queries
    from labctl.checks.nodata import declared

    absent = declared(DASHBOARDS)
    for path in DASHBOARD_FILES:
        board = load(path)
        assert board["uid"] == path.stem  # the declarations are keyed by file, Grafana's by uid
        found = panel_queries(board)
        assert always_answering(found, absent.get(path.stem, {})) == {}, path.name
        keys = {f"{title} [{ref}]" for title, ref, _ in found}
        assert set(absent.get(path.stem, {})) <= keys, f"stale declarations in {path.name}"
    assert set(absent) <= {p.stem for p in DASHBOARD_FILES}


@pytest.mark.parametrize(
    ("expr", "hides"),
    [
        ("sum(rate(x[5m])) or vector(0)", True),
        ("count(ALERTS) or on() vector(1)", True),
        ("sum(rate(failed[1m])) or sum(rate(sent[1m])) * 0", True),
        ("0 * sum(rate(sent[1m]))", True),
        ("sum(rate(x[5m])) * 60", False),
        ("sum(rate(x[5m])) * 0.5", False),
        ("sum(rate(x[10m])) / 100", False),
        ("max(a or b)", False),
    ],
)
def test_the_fallback_rule_sees_a_fallback_and_only_that(expr: str, hides: bool) -> None:
    from labctl.checks.layer4 import always_answering

    queries = [("Panel", "A", expr)]
    assert bool(always_answering(queries, {})) is hides
    assert always_answering(queries, {"Panel [A]": "declared"}) == {}
