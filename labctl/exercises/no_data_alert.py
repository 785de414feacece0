"""Module 4: a Grafana-managed alert that notifies when its data is missing.

The starting rule hides an outage three ways: its query ends in `or vector(0)` (it always has data),
`noDataState: OK` and `execErrState: OK` (missing data and failing queries read as "all is well").
The verifier reads the provisioning file and runs each Prometheus query through promtool's parser.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from labctl.checks.nodata import fallback
from labctl.exercises.promql_tasks import parse_error
from labctl.exercises.registry import Finding

NOTIFYING_NO_DATA = ("NoData", "Alerting")
NOTIFYING_ERROR = ("Error", "Alerting")


def _rules(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    groups = doc.get("groups") or []
    return [r for g in groups if isinstance(g, dict) for r in g.get("rules") or [] if isinstance(r, dict)]


def verify(path: Path) -> list[Finding]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [Finding(False, f"{path.name} is YAML: {exc}", "fix the YAML where the message points")]
    rules = _rules(doc)
    if not rules or not isinstance(doc, dict) or doc.get("apiVersion") != 1:
        return [Finding(False, "an alerting provisioning file (apiVersion: 1, groups, rules)", "start again")]
    findings = []
    for rule in rules:
        name = rule.get("title") or rule.get("uid") or "a rule"
        queries = [
            d
            for d in rule.get("data") or []
            if isinstance(d, dict) and d.get("datasourceUid") == "lab-prometheus"
        ]
        exprs = [str((d.get("model") or {}).get("expr", "")) for d in queries]
        findings.append(
            Finding(
                bool(exprs) and all(exprs),
                f"{name}: it queries the lab-prometheus datasource",
                "keep the query on the datasource uid lab-prometheus",
            )
        )
        with tempfile.TemporaryDirectory(prefix="labctl-alert-") as tmp:
            for expr in exprs:
                error = parse_error(expr, Path(tmp)) if expr else None
                hidden = fallback(expr)
                findings.append(
                    Finding(
                        not error and not hidden,
                        f"{name}: its query can have no data"
                        + (f" (it has `{hidden}`)" if hidden else "")
                        + (f" (promtool: {error})" if error else ""),
                        "a query that always answers never lets the alert see missing data",
                    )
                )
        findings += [
            Finding(
                rule.get("noDataState") in NOTIFYING_NO_DATA,
                f"{name}: no data notifies (noDataState: {rule.get('noDataState')})",
                "an outage must not read as 'all is well': see Grafana's noDataState values",
            ),
            Finding(
                rule.get("execErrState") in NOTIFYING_ERROR,
                f"{name}: a failing query notifies (execErrState: {rule.get('execErrState')})",
                "a datasource that cannot be reached is an outage too",
            ),
        ]
    return findings
