"""A Grafana configuration trap: a provisioned dashboard whose panels name a foreign datasource uid.

  datasource-uid  the dashboards are provisioned from a copy in which one dashboard refers to the
                  datasource uid of the Grafana it was exported from; Grafana shows "datasource not
                  found" on every panel of it, while Prometheus has the data

Grafana reads its dashboards from LAB_DASHBOARDS_DIR (dashboards/provisioning/dashboards/lab.yaml):
the fault points that at the copy (`<state>/dashboards/`, a neutral name) and restarts Grafana where it
runs. `labctl check` finds it from the files alone, so it is proven even where Grafana cannot run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from typing import Any

from labctl.errors import LabError
from labctl.faults.base import FaultContext
from labctl.faults.records import ConfigOverlay

FOREIGN_UID = "P1809F7CD0C75ACF3"  # the shape of a uid Grafana generates for a hand-made datasource
BROKEN_DASHBOARD = "claude-code-usage.json"


def _uids(node: Any) -> set[str]:
    """Every `uid` value in a dashboard's JSON (the dashboard's own, its panels' datasources)."""
    if isinstance(node, dict):
        found = {str(v) for k, v in node.items() if k == "uid" and isinstance(v, str)}
        return found.union(*(_uids(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_uids(v) for v in node))
    return set()


def _swap_uid(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: (new if k == "uid" and v == old else _swap_uid(v, old, new)) for k, v in node.items()}
    if isinstance(node, list):
        return [_swap_uid(v, old, new) for v in node]
    return node


def apply(ctx: FaultContext, opts: dict[str, Any]) -> ConfigOverlay:
    if ctx.lab.runtime != "native":
        raise LabError(
            "datasource-uid runs natively only: Grafana's container cannot see the lab's state directory",
            "use `labctl --runtime native`",
        )
    from labctl.checks.layer4 import provisioned_uids

    folder = ctx.lab.dir / "dashboards"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    source = ctx.model.root / "dashboards"
    # The provisioned datasource the dashboard's panels use (there are several: Prometheus, the stores).
    uses = _uids(json.loads((source / BROKEN_DASHBOARD).read_text()))
    uid = sorted(provisioned_uids(source / "provisioning") & uses)[0]
    for path in sorted(source.glob("*.json")):
        doc = json.loads(path.read_text())
        if path.name == BROKEN_DASHBOARD:
            doc = _swap_uid(doc, uid, FOREIGN_UID)
        (folder / path.name).write_text(json.dumps(doc, indent=2) + "\n")
    undo = ctx.add_overrides("grafana", env={"LAB_DASHBOARDS_DIR": str(folder)}, may_fail_start=True)
    return ConfigOverlay(service="grafana", undo=undo, scratch=str(folder))


def verify(ctx: FaultContext, rec: ConfigOverlay) -> list[str]:
    from labctl.checks.layer4 import foreign_references

    found = foreign_references(ctx.lab, ctx.model)
    if not found:
        raise LabError("every provisioned dashboard still refers to a provisioned datasource")
    return [f"{len(found)} panel datasource references to a uid no provisioned datasource has"]


def heal(ctx: FaultContext, rec: ConfigOverlay) -> None:
    undo = rec.undo
    if not ctx.runtime.is_running("grafana"):
        # Natively without a Grafana binary: nothing to start again.
        undo = dataclasses.replace(undo, was_running=False)
    try:
        ctx.remove_overrides(undo)
    except LabError:
        if ctx.runtime.is_running("grafana") or undo.was_running:
            raise
    rec.remove_scratch()
