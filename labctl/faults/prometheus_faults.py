"""Configuration traps in Prometheus: the student finds them from Prometheus' own pages.

  scrape-path   the Collector's exporter target gets the OTLP path /v1/metrics: every scrape is a 404
  broken-rules  a rule file with a PromQL syntax error, then a reload: the reload fails and Prometheus
                keeps running on its old rules (the file on disk is not what runs)

scrape-path rewrites the target's file_sd file (`__metrics_path__`), which labctl writes for both
runtimes; Prometheus re-reads it by itself. broken-rules swaps the data dir's link to the rules for a
copy of them, natively only (the Docker runtime mounts the repository's rules read-only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from labctl import scrape_targets
from labctl.errors import LabError
from labctl.faults.base import FaultContext, wait_until
from labctl.faults.records import RulesCopy, TargetsRewrite
from labctl.lazy import requests
from labctl.scrape_targets import Target

WRONG_PATH = "/v1/metrics"  # where OTLP/HTTP posts metrics; Prometheus scrapes /metrics
TARGET_FILE = "collector.json"
RULE_FILE = "pipeline-health.yml"


def _targets_dir(ctx: FaultContext) -> Path:
    if ctx.lab.runtime == "docker":
        return Path(ctx.runtime.targets_dir)  # type: ignore[attr-defined]
    return ctx.lab.data_dir("prometheus") / "targets"


def _collector_target(ctx: FaultContext) -> Target | None:
    targets = scrape_targets.read(ctx.lab.url("prometheus", "web")) or []
    return next((t for t in targets if t.job == "collector"), None)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: Prometheus never reads half a file


def apply_scrape_path(ctx: FaultContext, opts: dict[str, Any]) -> TargetsRewrite:
    folder = _targets_dir(ctx)
    original = (folder / TARGET_FILE).read_text()
    groups = json.loads(original)
    for group in groups:
        group.setdefault("labels", {})["__metrics_path__"] = WRONG_PATH
    _write(folder / TARGET_FILE, json.dumps(groups, indent=2) + "\n")
    return TargetsRewrite(targets_dir=str(folder), originals={TARGET_FILE: original})


def verify_scrape_path(ctx: FaultContext, rec: TargetsRewrite) -> list[str]:
    seen: dict[str, Target | None] = {}

    def failing() -> bool:
        t = seen["t"] = _collector_target(ctx)
        return t is not None and t.scrape_url.endswith(WRONG_PATH) and t.health == "down"

    # file_sd is re-read on change (at the latest every 5 s), then the next scrape fails.
    if not wait_until("target rewritten", failing, timeout=25, interval=0.5):
        before = seen.get("t")
        raise LabError(
            f"Prometheus still scrapes the Collector as before ({before.scrape_url if before else None})",
            "see Prometheus' targets page",
        )
    t = seen["t"]
    assert t is not None  # failing() saw it
    return [f"Prometheus target {t.scrape_url}: {t.health} — {t.last_error[:100]}"]


def heal_scrape_path(ctx: FaultContext, rec: TargetsRewrite) -> None:
    rec.restore()

    def restored() -> bool:
        t = _collector_target(ctx)
        return t is not None and not t.scrape_url.endswith(WRONG_PATH)

    if not wait_until("target restored", restored, timeout=25, interval=0.5):
        raise LabError("Prometheus did not pick up the restored scrape target", "`labctl reload prometheus`")


# --- broken-rules -----------------------------------------------------------------------------------


def _reload(ctx: FaultContext) -> tuple[int, str]:
    reply = requests.post(ctx.lab.url("prometheus", "web") + "/-/reload", timeout=30)
    return reply.status_code, reply.text.strip()


def runtime_info(ctx: FaultContext) -> dict[str, Any]:
    reply = requests.get(ctx.lab.url("prometheus", "web") + "/api/v1/status/runtimeinfo", timeout=2)
    return dict(reply.json()["data"])


def apply_broken_rules(ctx: FaultContext, opts: dict[str, Any]) -> RulesCopy:
    if ctx.lab.runtime != "native":
        raise LabError(
            "broken-rules runs natively only: the Docker runtime mounts the repository's rules read-only",
            "use `labctl --runtime native`, or edit lab/prometheus/rules/ yourself and reload",
        )
    data = ctx.lab.data_dir("prometheus")
    link = data / "rules"
    source = link.resolve()
    copy = data / ".rules-copy"
    copy.mkdir(exist_ok=True)
    for rule_file in sorted(source.glob("*.yml")):
        target = copy / rule_file.name
        target.unlink(missing_ok=True)
        if rule_file.name != RULE_FILE:
            target.symlink_to(rule_file)
            continue
        doc = yaml.safe_load(rule_file.read_text())
        first = doc["groups"][0]["rules"][0]
        first["expr"] = f"sum by (job) ({first['expr']}"  # an edit left half-done: one parenthesis short
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
    link.unlink()
    os.replace(copy, link)
    status, text = _reload(ctx)
    return RulesCopy(rules_dir=str(link), source=str(source), reload=[status, text[:200]])


def verify_broken_rules(ctx: FaultContext, rec: RulesCopy) -> list[str]:
    info = runtime_info(ctx)
    if info.get("reloadConfigSuccess") is not False:
        raise LabError("Prometheus accepted the rule files", f"see {ctx.lab.log_path('prometheus')}")
    return [f"POST /-/reload → {rec.reload[0]}; runtimeinfo reloadConfigSuccess false"]


def heal_broken_rules(ctx: FaultContext, rec: RulesCopy) -> None:
    rec.restore()
    status, text = _reload(ctx)
    if status != 200:
        raise LabError(
            f"Prometheus refused the restored rules ({status}: {text[:120]})", "`labctl logs prometheus`"
        )
