"""Reading the lab's dashboards: panels, their queries, and the datasources they name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.checks.layer4 import _BUILTINS
from tests.configs.confhelpers import DASHBOARDS

DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))
DATASOURCE_UID = "lab-prometheus"


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref_id: str
    expr: str  # as Prometheus receives it from Grafana: the builtins substituted
    range: bool

    @property
    def id(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref_id}"

    @property
    def key(self) -> str:
        """How dashboards/absent-when-healthy.yaml and `labctl check` name it: "<panel title> [<refId>]"."""
        return f"{self.panel} [{self.ref_id}]"


def substitute(expr: str) -> str:
    """Grafana's builtins ($__range, $__rate_interval) filled in as Grafana and labctl's layer-4 check do."""
    for key, value in _BUILTINS.items():
        expr = expr.replace(key, value)
    return expr


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries() -> list[Query]:
    out = []
    for path in DASHBOARD_FILES:
        dash = load(path)
        for panel in panels(dash):
            for target in panel.get("targets", []):
                out.append(
                    Query(
                        dash["uid"],
                        panel["title"],
                        target["refId"],
                        substitute(target["expr"]),
                        bool(target.get("range")),
                    )
                )
    return out


def datasource_uids(node: Any) -> Iterator[str]:
    """Every datasource uid named anywhere in a dashboard (panel, target, annotation, variable)."""
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            yield ds["uid"]
        elif isinstance(ds, str):
            yield ds
        for value in node.values():
            yield from datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasource_uids(value)
