"""Module 2: fix a Collector config whose two bugs `otelcol validate` does not see.

The starting file defines delta_to_cumulative but leaves it out of the metrics pipeline (Claude Code's
delta counters would reach Prometheus as per-interval values), and has no logs pipeline (Claude Code's
events go nowhere). The verifier runs the real `otelcol validate`, then reads the pipelines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.exercises.registry import Finding
from labctl.exercises.tools import run_tool


def _kind(component: str) -> str:
    return component.split("/", 1)[0]


def _pipeline(service: dict[str, Any], signal: str) -> dict[str, Any] | None:
    for name, body in (service.get("pipelines") or {}).items():
        if _kind(str(name)) == signal and isinstance(body, dict):
            return body
    return None


def verify(path: Path) -> list[Finding]:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [Finding(False, f"{path.name} is YAML: {exc}", "fix the YAML where the message points")]
    if not isinstance(config, dict):
        return [Finding(False, f"{path.name} is a Collector config", "start again: labctl exercise start")]
    validated, _ = run_tool(
        "otelcol-lab", ["validate", "--config", str(path.resolve())], "otelcol validate accepts it"
    )
    findings = [validated]
    service = config.get("service") or {}
    metrics = _pipeline(service, "metrics") or {}
    processors = [str(p) for p in metrics.get("processors") or []]
    kinds = [_kind(p) for p in processors]
    findings.append(
        Finding(
            "delta_to_cumulative" in kinds or "deltatocumulative" in kinds,
            "the metrics pipeline turns delta sums into running totals",
            "a processor that is defined but not listed in a pipeline does nothing",
        )
    )
    logs = _pipeline(service, "logs")
    findings.append(
        Finding(
            logs is not None
            and "otlp" in [_kind(str(r)) for r in logs.get("receivers") or []]
            and bool(logs.get("exporters")),
            "a logs pipeline takes Claude Code's events from the otlp receiver to an exporter",
            "events are OTLP log records: every signal needs its own pipeline",
        )
    )
    if logs is not None:
        findings.append(
            Finding(
                "redaction" in [_kind(str(p)) for p in logs.get("processors") or []],
                "the logs pipeline masks prompts (a redaction processor)",
                "events may carry prompt text: mask it before it reaches the log",
            )
        )
    order_ok = True
    for name, body in (service.get("pipelines") or {}).items():
        procs = [_kind(str(p)) for p in (body or {}).get("processors") or []]
        if procs and (procs[0] != "memory_limiter" or procs[-1] != "batch"):
            order_ok = False
            findings.append(
                Finding(False, f"pipeline {name}: memory_limiter first, batch last", "see the file's header")
            )
    if order_ok:
        findings.append(Finding(True, "every pipeline: memory_limiter first, batch last"))
    return findings
