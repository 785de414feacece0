"""Read what the real Collector decoded: its debug exporter's detailed output (tests' overlay) as records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ATTR = re.compile(r"->\s([^:]+):\s(\w+)\((.*)\)\s*$")
_FIELD = re.compile(r"->\s(Name|Description|Unit|DataType|IsMonotonic|AggregationTemporality):\s?(.*)$")


def _value(kind: str, raw: str) -> Any:
    if kind == "Int":
        return int(raw)
    if kind == "Double":
        return float(raw)
    if kind == "Bool":
        return raw == "true"
    return raw


@dataclass
class Point:
    metric: dict[str, str]
    resource: dict[str, Any]
    scope: str
    attributes: dict[str, Any] = field(default_factory=dict)
    value: float | None = None


@dataclass
class Event:
    body: str
    resource: dict[str, Any]
    scope: str
    attributes: dict[str, Any] = field(default_factory=dict)


def parse(log: str) -> tuple[list[Point], list[Event]]:
    points: list[Point] = []
    events: list[Event] = []
    resource: dict[str, Any] = {}
    scope = ""
    metric: dict[str, str] = {}
    section = ""  # resource | point | log | descriptor
    for line in log.splitlines():
        if "Resource attributes:" in line:
            resource, section = {}, "resource"
            continue
        if "InstrumentationScope" in line:
            scope = line.split("InstrumentationScope", 1)[1].strip()
            continue
        if re.search(r"\bMetric #\d+", line):
            metric, section = {}, "descriptor"
            continue
        if re.search(r"\bNumberDataPoints #\d+", line):
            points.append(Point(dict(metric), dict(resource), scope))
            section = "point"
            continue
        if re.search(r"\bLogRecord #\d+", line):
            events.append(Event("", dict(resource), scope))
            section = "log"
            continue
        if section == "descriptor":
            m = _FIELD.search(line)
            if m:
                metric[m.group(1)] = m.group(2).strip()
                continue
        m = _ATTR.search(line)
        if m:
            key, val = m.group(1).strip(), _value(m.group(2), m.group(3))
            if section == "resource":
                resource[key] = val
            elif section == "point" and points:
                points[-1].attributes[key] = val
            elif section == "log" and events:
                events[-1].attributes[key] = val
            continue
        if section == "point" and line.startswith("Value: ") and points:
            points[-1].value = float(line.split(":", 1)[1])
        if section == "log" and "Body: Str(" in line and events:
            events[-1].body = line.split("Body: Str(", 1)[1].rsplit(")", 1)[0]
    return points, events
