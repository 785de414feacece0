"""Series that multiply with traffic: a label whose value is a per-request id.

Each distinct set of label values is its own series. A bounded label (model, type, status) adds a few
series once; a label that takes a new value on every request (a request id, a response id) adds new
series on every request, so Prometheus' head series climb with traffic and never come back down. The
check's marker makes a few model requests with ids of its own (labctl/checks/marker.py); when any of
those ids shows up as a label value on the Collector's exporter, some configuration turned a
per-request id into a label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labctl.checks import exposition
from labctl.checks.context import CheckContext, wait_for
from labctl.checks.exposition import Sample
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult


@dataclass
class IdLabels:
    """Where the ids showed up: label name -> the metric names carrying it, and the series involved."""

    labels: dict[str, set[str]] = field(default_factory=dict)
    series: int = 0
    ids_seen: set[str] = field(default_factory=set)


def id_labels(samples: list[Sample], ids: set[str]) -> IdLabels:
    """The labels of `samples` whose value is one of `ids` (a histogram's buckets count one by one)."""
    found = IdLabels()
    for s in samples:
        hits = [k for k, v in s.labels.items() if v in ids]
        if not hits:
            continue
        found.series += 1
        for key in hits:
            found.labels.setdefault(key, set()).add(s.name)
            found.ids_seen.add(s.labels[key])
    return found


def describe(found: IdLabels, requests: int) -> list[str]:
    """Evidence lines: which label carries the ids, on which metrics, and what that costs per request."""
    lines = []
    for label, metrics in sorted(found.labels.items()):
        names = sorted(metrics)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        lines.append(f"label {label} has one value per request ({len(found.ids_seen)} ids) on {shown}")
    per_request = found.series / max(1, requests)
    lines.append(
        f"{requests} requests made {found.series} series on the Collector's exporter "
        f"(about {per_request:.0f} new series per request, for ever)"
    )
    return lines


NAME = "series per request"


def check(cx: CheckContext) -> list[CheckResult]:
    """Layer 2: none of the marker's request ids is a label value on the Collector's exporter."""
    marker = cx.marker
    if not (cx.reached.get("collector") and marker and marker.request_ids):
        return []  # nothing exported to look at: earlier rows say why
    ids = set(marker.request_ids)
    url = cx.url("collector", "prom_exporter", "/metrics")
    seen: dict[str, IdLabels] = {}

    def complete() -> bool:
        reply = http_get(url, timeout=2)
        seen["found"] = id_labels(exposition.parse(reply.body), ids) if reply.ok else IdLabels()
        # Some ids but not all yet: a pipeline is still flushing them; none at all: nothing makes them
        # labels (no waiting on a healthy lab).
        return not seen["found"].ids_seen or seen["found"].ids_seen == ids

    wait_for(complete, timeout=3.0)
    found = seen["found"]
    if not found.series:
        return [
            CheckResult(
                2,
                NAME,
                True,
                [f"the marker's {len(ids)} request ids are on no series of the exporter ({url})"],
            )
        ]
    evidence = describe(found, len(ids))
    head = _head_series(cx)
    if head is not None:
        evidence.append(f"Prometheus' head series now: {head:g} (prometheus_tsdb_head_series)")
    return [
        CheckResult(
            2,
            NAME,
            False,
            evidence,
            cause="the Collector turns a per-request id into a label: every request adds new series, "
            "so the series count grows with traffic and never comes back down",
            hint="find the label in the Collector's configuration (processors, connectors, exporters) "
            "and keep only bounded values as labels",
            playbook="cardinality-explosion",
        )
    ]


def _head_series(cx: CheckContext) -> float | None:
    if "prometheus" not in cx.running:
        return None
    reply = http_get(
        cx.url("prometheus", "web", "/api/v1/query?query=prometheus_tsdb_head_series"), timeout=2
    )
    try:
        return float(reply.json()["data"]["result"][0]["value"][1]) if reply.ok else None
    except (KeyError, IndexError, ValueError, TypeError):
        return None
