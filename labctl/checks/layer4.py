"""Layer 4: Grafana answers, its datasource works, dashboards are provisioned and every panel has data.

Where Grafana is not running (native without its binary), every panel's PromQL from dashboards/*.json
is evaluated against Prometheus directly, and the result says so.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_api_client import PrometheusApiClientException

from labctl.checks import nodata
from labctl.checks.context import CheckContext, service_env, wait_for
from labctl.checks.layer3 import query
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult
from labctl.model import DOCKER_REPO, LabModel
from labctl.state import LabState

# Grafana's built-in variables, with the values Grafana would pick for a 5s-scrape datasource.
# Grafana's builtins as Grafana fills them for the default 1 h dashboard range: $__rate_interval is
# max($__interval + scrape interval, 4 × scrape interval) with the datasource's timeInterval (5s), so 20s.
_BUILTINS = {
    "$__rate_interval": "20s",
    "${__rate_interval}": "20s",
    "$__interval": "5s",
    "${__interval}": "5s",
    "$__range": "1h",
    "${__range}": "1h",
}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.extend(panels(panel))
        if panel.get("targets"):
            out.append(panel)
    return out


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr with variables substituted) for every Prometheus target."""
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    out = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr or target.get("hide"):
                continue
            for key, value in _BUILTINS.items():
                expr = expr.replace(key, value)
            for name, var in variables.items():
                current = (var.get("current") or {}).get("value") or ".*"
                value = ".*" if current in ("$__all", ["$__all"]) else current
                expr = re.sub(r"\$\{?" + re.escape(str(name)) + r"\}?", str(value), expr)
            out.append((str(panel.get("title", "?")), str(target.get("refId", "A")), expr))
    return out


def dashboard_files(cx: CheckContext) -> list[Path]:
    return sorted((cx.model.root / "dashboards").glob("*.json"))


def check(cx: CheckContext, grafana_running: bool) -> list[CheckResult]:
    found = _grafana(cx) if grafana_running else _promql_direct(cx)
    return [*found[:1], _references(cx), *found[1:]]


# Datasource uids Grafana itself provides (annotations, mixed panels), never provisioned.
_BUILTIN_UIDS = {"grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"}


def _host_path(model: LabModel, value: str) -> Path:
    """A path from Grafana's env as this host sees it (the Docker runtime's are inside the container)."""
    if value == DOCKER_REPO or value.startswith(DOCKER_REPO + "/"):
        return model.root / value[len(DOCKER_REPO) :].lstrip("/")
    return Path(value)


def provisioned_uids(provisioning: Path) -> set[str]:
    uids: set[str] = set()
    for path in sorted((provisioning / "datasources").glob("*.y*ml")):
        for ds in (yaml.safe_load(path.read_text()) or {}).get("datasources") or []:
            if ds.get("uid"):
                uids.add(str(ds["uid"]))
    return uids


def _refs(node: Any, where: str) -> list[tuple[str, str]]:
    """(panel title, datasource uid) for every datasource reference in a dashboard."""
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        title = str(node.get("title", where))
        ds = node.get("datasource")
        if isinstance(ds, dict) and ds.get("uid") and not str(ds["uid"]).startswith("$"):
            out.append((title, str(ds["uid"])))
        for value in node.values():
            out += _refs(value, title)
    elif isinstance(node, list):
        for value in node:
            out += _refs(value, where)
    return out


def foreign_references(lab: LabState, model: LabModel) -> list[str]:
    """'<dashboard> · <panel>: uid <x>' for each reference to a datasource Grafana is not provisioned
    with: those panels show "datasource not found" while the data is there."""
    env = service_env(lab, model, "grafana")
    provisioning = _host_path(
        model, env.get("GF_PATHS_PROVISIONING", f"{DOCKER_REPO}/dashboards/provisioning")
    )
    folder = _host_path(model, env.get("LAB_DASHBOARDS_DIR", f"{DOCKER_REPO}/dashboards"))
    known = provisioned_uids(provisioning) | _BUILTIN_UIDS
    out = []
    for path in sorted(folder.glob("*.json")):
        for panel, uid in _refs(json.loads(path.read_text()), path.stem):
            if uid not in known:
                out.append(f"{path.stem} · {panel}: uid {uid}")
    return list(dict.fromkeys(out))


def _references(cx: CheckContext) -> CheckResult:
    env = service_env(cx.lab, cx.model, "grafana")
    folder = _host_path(cx.model, env.get("LAB_DASHBOARDS_DIR", f"{DOCKER_REPO}/dashboards"))
    foreign = foreign_references(cx.lab, cx.model)
    count = len(list(folder.glob("*.json")))
    evidence = [f"{count} dashboards provisioned from {folder}"]
    if not foreign:
        return CheckResult(
            4, "datasource references", True, [*evidence, "every panel names a provisioned datasource"]
        )
    return CheckResult(
        4,
        "datasource references",
        False,
        [*evidence, *foreign[:4], *([f"... and {len(foreign) - 4} more"] if len(foreign) > 4 else [])],
        cause="panels refer to a datasource uid that no provisioned datasource has: Grafana shows "
        "'datasource not found' there although Prometheus has the data",
        hint="compare the dashboard JSON's datasource uid with dashboards/provisioning/datasources/",
        playbook="hardcoded-datasource-uid",
    )


def _promql_direct(cx: CheckContext) -> list[CheckResult]:
    why = "no Grafana image" if cx.lab.runtime == "docker" else "no Grafana binary"
    note = (
        f"Grafana is not running in this lab ({why} on this machine): each panel's PromQL "
        "was evaluated against Prometheus directly"
    )
    results = [CheckResult(4, "grafana", True, [note])]
    if not cx.reached.get("prometheus"):
        results.append(
            CheckResult(
                4,
                "panels have data",
                False,
                [note, "the marker is not in Prometheus (layer 3)"],
                cause="nothing to show: fix the earlier layer first",
                playbook="dashboard-no-data",
            )
        )
        return results
    absent = nodata.declared(cx.model.root / "dashboards")
    for path in dashboard_files(cx):
        queries = panel_queries(json.loads(path.read_text()))
        results.append(_evaluate(cx, path.stem, queries, absent.get(path.stem, {})))
    return results


def always_answering(queries: list[tuple[str, str, str]], absent: dict[str, str]) -> dict[str, str]:
    """Queries that can never show "No data" (a fallback) and are not declared absent when healthy."""
    found = {}
    for title, ref, expr in queries:
        key = nodata.query_key(title, ref)
        part = nodata.fallback(expr)
        if part and key not in absent:
            found[key] = f"can never show 'No data' (`{part}`): it would hide a broken pipeline"
    return found


def _evaluate(
    cx: CheckContext, name: str, queries: list[tuple[str, str, str]], absent: dict[str, str]
) -> CheckResult:
    status: dict[str, str] = {}

    def run_all() -> bool:
        for title, ref, expr in queries:
            key = nodata.query_key(title, ref)
            if status.get(key, "").startswith("ok"):
                continue
            try:
                res = query(cx, expr)
                if res:
                    status[key] = f"ok ({len(res)} series)"
                elif key in absent:
                    status[key] = "ok (no data: absent when healthy)"
                else:
                    status[key] = f"no data: {expr}"
            except (PrometheusApiClientException, requests.RequestException) as exc:
                status[key] = f"error: {exc}"
        return all(v.startswith("ok") for v in status.values())

    # rate() needs two scrapes of a new series: wait up to two intervals for the last panels to fill.
    cx.progress(f"evaluating {len(queries)} panel queries of {name}")
    wait_for(run_all, timeout=cx.scrape_interval * 2 + 1, interval=1.0)
    empty = {k: v for k, v in status.items() if not v.startswith("ok")}
    evidence = [f"{len(status) - len(empty)}/{len(status)} panel queries return data (via Prometheus)"]
    evidence += [f"{k}: {v}" for k, v in empty.items()]
    hiding = always_answering(queries, absent)
    if hiding:
        return CheckResult(
            4,
            f"dashboard {name}",
            False,
            evidence + [f"{k}: {v}" for k, v in hiding.items()],
            cause=f"{len(hiding)} panel(s) of {name} always answer, even when the pipeline is broken",
            hint="remove the fallback, or declare the query in dashboards/absent-when-healthy.yaml",
            playbook="dashboard-no-data",
        )
    if empty:
        return CheckResult(
            4,
            f"dashboard {name}",
            False,
            evidence,
            cause=f"{len(empty)} panel(s) of {name} would show 'No data'",
            hint="run the panel's query in Prometheus; check metric names and labels",
            playbook="dashboard-no-data",
        )
    return CheckResult(4, f"dashboard {name}", True, evidence)


def _grafana(cx: CheckContext) -> list[CheckResult]:
    from grafana_client import GrafanaApi

    base = cx.url("grafana", "web")
    health = http_get(base + "/api/health", timeout=3)
    if not health.ok:
        return [
            CheckResult(
                4,
                "grafana",
                False,
                [health.describe()],
                cause="Grafana does not answer",
                hint="`labctl status`; `labctl logs grafana`",
                playbook="grafana-down",
            )
        ]
    results = [CheckResult(4, "grafana", True, [f"{base}/api/health: {health.body.strip()[:80]}"])]
    password = cx.lab.settings.get("grafana_admin_password")
    api = GrafanaApi.from_url(base, credential=("admin", password) if password else None, timeout=5)
    try:
        ds = api.datasource.health_inquiry("lab-prometheus")  # a DatasourceHealthResponse dataclass
        ok = bool(ds.success) and str(ds.status).upper() == "OK"
        results.append(
            CheckResult(
                4,
                "datasource",
                ok,
                [f"lab-prometheus: {ds.status} — {ds.message}"],
                cause=None if ok else "Grafana cannot query Prometheus through its datasource",
                playbook=None if ok else "grafana-datasource",
            )
        )
    except Exception as exc:
        results.append(
            CheckResult(
                4,
                "datasource",
                False,
                [f"lab-prometheus: {exc}"],
                cause="the lab-prometheus datasource is missing or broken",
                playbook="grafana-datasource",
            )
        )
    absent = nodata.declared(cx.model.root / "dashboards")
    for path in dashboard_files(cx):
        uid = json.loads(path.read_text()).get("uid", path.stem)
        try:
            board = api.dashboard.get_dashboard(uid)
        except Exception as exc:
            results.append(
                CheckResult(
                    4,
                    f"dashboard {uid}",
                    False,
                    [f"/api/dashboards/uid/{uid}: {exc}"],
                    cause="the dashboard is not provisioned",
                    playbook="dashboard-no-data",
                )
            )
            continue
        queries = panel_queries(board["dashboard"])
        provisioned = bool(board.get("meta", {}).get("provisioned"))
        results.append(_evaluate_grafana(cx, api, uid, queries, provisioned, absent.get(path.stem, {})))
    return results


def _evaluate_grafana(
    cx: CheckContext,
    api: Any,
    uid: str,
    queries: list[tuple[str, str, str]],
    provisioned: bool,
    absent: dict[str, str],
) -> CheckResult:
    status: dict[str, str] = {}

    def run_all() -> bool:
        now = int(time.time() * 1000)
        for title, ref, expr in queries:
            key = nodata.query_key(title, ref)
            body = {
                "queries": [
                    {
                        "refId": ref,
                        "datasource": {"uid": "lab-prometheus", "type": "prometheus"},
                        "expr": expr,
                        "instant": True,
                    }
                ],
                "from": str(now - 3600_000),
                "to": str(now),
            }
            try:
                res = api.client.POST("/ds/query", json=body)
                frames = res["results"][ref].get("frames", [])
                rows = sum(len((f.get("data") or {}).get("values", [[]])[0] or []) for f in frames)
                if rows:
                    status[key] = f"ok ({rows} values)"
                elif key in absent:
                    status[key] = "ok (no data: absent when healthy)"
                else:
                    status[key] = f"no data: {expr}"
            except Exception as exc:
                status[key] = f"error: {exc}"
        return all(v.startswith("ok") for v in status.values())

    wait_for(run_all, timeout=cx.scrape_interval * 2 + 1, interval=1.0)
    empty = {k: v for k, v in status.items() if not v.startswith("ok")}
    evidence = [
        (
            f"provisioned: {provisioned}; {len(status) - len(empty)}/{len(status)} panels return data "
            "(Grafana /api/ds/query)"
        ),
        *(f"{k}: {v}" for k, v in empty.items()),
    ]
    hiding = always_answering(queries, absent)
    evidence += [f"{k}: {v}" for k, v in hiding.items()]
    ok = provisioned and not empty and not hiding
    cause = "panels show 'No data' (or the dashboard is not provisioned)"
    if hiding:
        cause = f"{len(hiding)} panel(s) always answer, even when the pipeline is broken"
    return CheckResult(
        4,
        f"dashboard {uid}",
        ok,
        evidence,
        cause=None if ok else cause,
        hint=None if ok or not hiding else "remove the fallback, or declare it in absent-when-healthy.yaml",
        playbook=None if ok else "dashboard-no-data",
    )
