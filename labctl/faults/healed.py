"""What `labctl heal` put back, in a student's words (one phrase per fault)."""

from __future__ import annotations

CHANGED_BACK = {
    "network": "the hop carries packets again",
    "latency": "the hop's added delay is gone",
    "endpoint": "the proxy's upstream is the Collector's address again",
    "auth": "the proxy and the Collector agree on the token again",
    "collector-crash": "the Collector runs again",
    "memory-pressure": "the Collector's memory limit is back to its normal size",
    "storage-down": "Prometheus runs again",
    "contract": "the proxy checks against the lab's own contract again",
    "cardinality": "the proxy's contract allows real sessions' series again",
    "delta-temporality": "the Collector turns delta counters into totals again",
    "series-expiry": "the Collector's exporter keeps idle series again",
    "per-request-label": "the Collector makes no series per request any more",
    "no-logs-pipeline": "the Collector has its logs pipeline again",
    "scrape-path": "Prometheus scrapes the exporter's real path again",
    "broken-rules": "Prometheus' rule file is whole again",
    "datasource-uid": "the dashboard names the provisioned datasource again",
}


def changed_back(fault: str) -> str:
    return CHANGED_BACK.get(fault, "put back as it was")
