"""Read Prometheus text exposition (the Collector's :8888, the proxy's /metrics) and sum by name regex.

Collector counter names changed across releases (`_total`, unit suffixes), so callers match a regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    out: list[Sample] = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append(Sample(s.name, dict(s.labels), float(s.value)))
    return out


def total(samples: list[Sample], name_regex: str, **labels: str) -> float | None:
    """Sum of samples whose name matches; None when no such metric exists at all."""
    pattern = re.compile(name_regex)
    found = [
        s
        for s in samples
        if pattern.fullmatch(s.name) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    if not found:
        return None
    return sum(s.value for s in found)


def by_label(samples: list[Sample], name_regex: str, label: str) -> dict[str, float]:
    pattern = re.compile(name_regex)
    out: dict[str, float] = {}
    for s in samples:
        if pattern.fullmatch(s.name):
            key = s.labels.get(label, "")
            out[key] = out.get(key, 0.0) + s.value
    return out
