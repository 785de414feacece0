"""What a graded fault's answer holds, and the answers that are data: the configuration traps' (one
variant each) and how each hop's sender shows it cannot deliver (labctl/faults/blind.py uses both)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    layer: int
    hop: str
    cause: str
    explanation: str  # what the fault did, in words
    pointers: tuple[str, ...]  # the evidence that pointed to it


# How the sender of each hop shows that it cannot deliver (a cut hop's third pointer).
SENDER_RETRIES = {
    "proxy-collector": "the proxy keeps retrying (its state: retrying)",
    "collector-prometheus": "Prometheus' target for the Collector is down (up 0)",
    "prometheus-grafana": "Grafana's panels time out or show a datasource error",
    "collector-victorialogs": "the Collector's events exporter fails and queues (its log, send_failed)",
    "collector-jaeger": "the Collector's traces exporter fails and queues (its log, send_failed)",
    "prometheus-alertmanager": "Prometheus fails to send alerts (prometheus_notifications_errors_total)",
    "alertmanager-receiver": "Alertmanager's webhook deliveries fail (alertmanager_notifications_failed_total)",
}


# The configuration traps: one variant each, so one answer each.
TRAP_ANSWERS: dict[str, Answer] = {
    "delta-temporality": Answer(
        2,
        "none",
        "temporality",
        "the Collector's metrics pipeline lost delta_to_cumulative: the prometheus exporter replaces a "
        "total with any delta that does not start where the series' last point ended",
        (
            "every service healthy, nothing refused or dropped",
            "check's counter totals row: 2 commits sent, 1 on the exporter",
            "`labctl proxy sessions` totals are higher than Prometheus'",
        ),
    ),
    "series-expiry": Answer(
        2,
        "none",
        "series-expiry",
        "the Collector's prometheus exporter got a metric_expiration so short that every series is gone "
        "before Prometheus scrapes it",
        (
            "the Collector accepts the points and its exporter 'sends' them (internal metrics)",
            "its /metrics page never shows them; Prometheus stores nothing new",
        ),
    ),
    "no-logs-pipeline": Answer(
        2,
        "none",
        "missing-pipeline",
        "the Collector's logs pipeline was removed: its OTLP receiver no longer takes log records, so "
        "Claude Code's events are refused (UNIMPLEMENTED) and the proxy drops them",
        (
            "metrics arrive, events do not (check's events row)",
            "the proxy's last error: UNIMPLEMENTED ... LogsService; its dropped counter for logs",
        ),
    ),
    "per-request-label": Answer(
        2,
        "none",
        "cardinality",
        "the Collector got the spanmetrics connector with request_id as a dimension: every model "
        "request adds a call counter and a latency histogram of its own (about 20 series)",
        (
            "every service healthy, nothing refused or dropped",
            "check's series-per-request row: the marker's request ids are label values on the exporter",
            "Prometheus' head series (prometheus_tsdb_head_series) climb with traffic and stay up",
        ),
    ),
    "scrape-path": Answer(
        3,
        "collector-prometheus",
        "scrape-config",
        "Prometheus' target for the Collector's exporter was given a wrong path: every scrape gets 404",
        (
            "the Collector is healthy and its /metrics has the marker",
            "the target's scrape URL (Prometheus' targets page) ends in another path; its error is 404",
        ),
    ),
    "broken-rules": Answer(
        3,
        "none",
        "rule-file",
        "a rule file was broken and Prometheus reloaded: the reload failed, so it still runs the old "
        "rules and any change to them (or to prometheus.yml) is not in effect",
        (
            "/api/v1/status/runtimeinfo: reloadConfigSuccess false",
            "prometheus_config_last_reload_successful 0; Prometheus' log: error loading rules",
        ),
    ),
    "datasource-uid": Answer(
        4,
        "prometheus-grafana",
        "datasource",
        "a provisioned dashboard's panels refer to a datasource uid that no provisioned datasource has "
        "(a dashboard exported from another Grafana)",
        (
            "Prometheus has the data, the panels' queries return it",
            "the dashboard's datasource uid differs from the provisioned datasource's",
        ),
    ),
}
