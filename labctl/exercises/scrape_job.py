"""Module 3: a scrape job that Prometheus accepts and that still collects nothing useful.

The starting job pulls from the Collector's OTLP/HTTP receiver (port 4318, path /v1/metrics), which
takes pushes and serves no metrics, instead of its prometheus exporter (8889, /metrics), and scrapes
once a minute, so the lab's rate(...[1m]) has one sample where it needs four. `promtool check config`
accepts all of that; the verifier runs it, then reads the job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from labctl.exercises.registry import Finding
from labctl.exercises.tools import run_tool

JOB = "claude-code"
EXPORTER_PORT = 8889
RATE_WINDOW_S = 60  # the lab's rules and panels use rate(...[1m])
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """A Prometheus duration (`15s`, `1m30s`) in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(duration)
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _job(config: dict[str, Any]) -> dict[str, Any] | None:
    for job in config.get("scrape_configs") or []:
        if isinstance(job, dict) and job.get("job_name") == JOB:
            return job
    return None


def verify(path: Path) -> list[Finding]:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [Finding(False, f"{path.name} is YAML: {exc}", "fix the YAML where the message points")]
    if not isinstance(config, dict):
        return [Finding(False, f"{path.name} is a Prometheus config", "start again: labctl exercise start")]
    checked, _ = run_tool(
        "promtool",
        ["check", "config", "--syntax-only", path.name],
        "promtool check config accepts it",
        cwd=path.resolve().parent,
    )
    findings = [checked]
    job = _job(config)
    if job is None:
        return [*findings, Finding(False, f"a job named {JOB}", "keep the job's name: dashboards select it")]
    targets = [str(t) for sc in job.get("static_configs") or [] for t in (sc or {}).get("targets") or []]
    ports = {t.rsplit(":", 1)[-1] for t in targets}
    findings.append(
        Finding(
            bool(targets) and ports == {str(EXPORTER_PORT)},
            f"the job pulls from the Collector's prometheus exporter (port {EXPORTER_PORT})",
            "4317/4318 take OTLP pushes; Prometheus pulls from the exporter's port",
        )
    )
    metrics_path = str(job.get("metrics_path", "/metrics"))
    findings.append(
        Finding(
            metrics_path == "/metrics",
            "the job reads the exporter's path, /metrics",
            "/v1/metrics is where OTLP/HTTP pushes go, not a page to pull",
        )
    )
    interval = str(job.get("scrape_interval") or (config.get("global") or {}).get("scrape_interval") or "1m")
    try:
        every = seconds(interval)
    except ValueError:
        every = float("inf")
    findings.append(
        Finding(
            every * 4 <= RATE_WINDOW_S,
            f"rate(...[1m]) gets at least four samples (scrape interval {interval})",
            "the scrape interval must be a quarter of the rate window or less",
        )
    )
    return findings
