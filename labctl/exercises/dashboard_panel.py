"""Module 4: a panel that follows the dashboards' rules, with a variable to pick the model.

The starting panel graphs rate over a fixed [1m] and ends in `or vector(0)`: it shows a calm 0 when
the pipeline is broken. The verifier reads the dashboard (a `model` variable fed by label_values, the
panel using $__rate_interval and the variable, no fallback), then runs its query with promtool on the
module-3 exercise's hour of data, the variable set to one model, against the model answer.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from labctl.checks.nodata import fallback
from labctl.exercises.promql_tasks import check_query
from labctl.exercises.registry import REPO, Finding

SOLUTION = REPO / "lab" / "docs" / "answer-key" / "dashboard-panel.json"
PANEL = "Tokens per second by type"
_PICKED = "claude-opus-5-5"  # the variable's value when the query is run
_RATE_WINDOW = "4m"  # $__rate_interval for one-minute data: 4 × the scrape interval


def _panel_expr(dashboard: dict[str, Any]) -> str | None:
    for panel in dashboard.get("panels") or []:
        if panel.get("title") == PANEL:
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    return str(target["expr"])
    return None


def _as_run(expr: str) -> str:
    expr = re.sub(r"\$\{?__rate_interval\}?", _RATE_WINDOW, expr)
    return re.sub(r"\$\{?model(?::\w+)?\}?|\[\[model\]\]", _PICKED, expr)


def verify(path: Path) -> list[Finding]:
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [Finding(False, f"{path.name} is JSON: {exc}", "fix the JSON where the message points")]
    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list") or []}
    model_var = variables.get("model") or {}
    source = json.dumps(model_var.get("query", "")) + str(model_var.get("definition", ""))
    findings = [
        Finding(
            model_var.get("type") == "query" and "label_values(" in source and "model" in source,
            "a `model` variable lists the models Prometheus knows",
            "a query variable can use label_values(<metric>, <label>)",
        )
    ]
    expr = _panel_expr(dashboard)
    if expr is None:
        return [*findings, Finding(False, f"the panel {PANEL!r} has a query", "keep the panel's title")]
    hidden = fallback(expr)
    findings += [
        Finding(
            hidden is None,
            "the query can show 'No data'" + (f" (it has `{hidden}`)" if hidden else ""),
            "a fallback shows 0 when the pipeline is broken: the panel would hide an outage",
        ),
        Finding(
            re.search(r"\$\{?__rate_interval\}?", expr) is not None,
            "the rate window is $__rate_interval",
            "a fixed window shorter than 4 scrape intervals gives gaps or nothing",
        ),
        Finding(
            re.search(r"=~\s*\"(\$\{?model(:\w+)?\}?|\[\[model\]\])\"", expr) is not None,
            'the query filters on the variable (model=~"$model")',
            "=~ (a regex match) also works when several models or All are picked",
        ),
    ]
    solution = _panel_expr(json.loads(SOLUTION.read_text(encoding="utf-8"))) or ""
    with tempfile.TemporaryDirectory(prefix="labctl-panel-") as tmp:
        answer = check_query("the panel's answer", _as_run(expr), _as_run(solution), Path(tmp))
    findings.append(
        Finding(
            answer.ok,
            answer.what.replace("the panel's answer", f"the panel's answer for model {_PICKED}"),
            "tokens per second, one series per type, for the chosen model only",
        )
    )
    return findings
