"""Playbook names the checks link to. Each is a page `lab/playbooks/<name>.md` a student reads next.

The name is the contract between the checks (which pick the most likely cause) and the docs.
"""

from __future__ import annotations

from pathlib import Path

PLAYBOOKS: dict[str, str] = {
    "proxy-down": "The logging proxy does not answer: nothing can be received",
    "marker-not-received": "The client's telemetry never reached the proxy (endpoint, protocol, exporter settings)",
    "contract-violation": "The proxy received telemetry that breaks the metric/event contract",
    "upstream-unreachable": "The proxy cannot reach the Collector: partition, wrong host or port (hangs, refused, DNS)",
    "upstream-slow": "The hop to the Collector is slow: exports take long or time out (latency)",
    "upstream-auth": "The Collector rejects the proxy's token: HTTP 401 / gRPC UNAUTHENTICATED",
    "upstream-protocol": "The proxy speaks the wrong protocol for the Collector port (gRPC vs HTTP)",
    "collector-down": "The Collector process is not running or its health endpoint fails",
    "collector-refusing": "The Collector's receiver refuses data (memory limiter, bad data)",
    "collector-export-failing": "The Collector accepts data but its exporter fails or queues",
    "delta-temporality": "Totals are too low: delta counters are not made cumulative before the exporter",
    "series-expiring": "Series vanish from the Collector's exporter (metric_expiration) before they are read",
    "events-missing": "Metrics arrive but events do not: no logs pipeline takes them",
    "cardinality-explosion": "Series multiply with traffic: a per-request id became a label",
    "scrape-target-down": "Prometheus cannot scrape a target (partition, wrong address, process down)",
    "prometheus-down": "Prometheus does not answer: storage is down",
    "series-missing": "Prometheus is up and scraping but the marker's series is not there",
    "alert-rules-missing": "The pipeline-health alert rules are not loaded in Prometheus",
    "pipeline-alert-firing": "A pipeline-health alert is firing: read which one and follow its hop",
    "grafana-down": "Grafana does not answer",
    "grafana-datasource": "Grafana's Prometheus datasource is broken or unreachable",
    "hardcoded-datasource-uid": "Panels name a datasource uid Grafana is not provisioned with",
    "dashboard-no-data": "A dashboard panel's query returns no data",
    "events-not-stored": "The Collector's events do not reach VictoriaLogs, the event store",
    "traces-not-stored": "The Collector's spans do not reach Jaeger, the trace store",
    "alertmanager-unreachable": "Prometheus cannot deliver alerts to Alertmanager (hop, or Alertmanager down)",
    "notification-undelivered": "Alertmanager has the alert but the notify-receiver never got it",
}


def playbook_path(name: str, repo: Path) -> Path:
    return repo / "lab" / "playbooks" / f"{name}.md"
