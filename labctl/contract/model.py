"""The contract as data: what a metric, an event and a resource must look like.

Every dialect (labctl's own YAML, the seed's `metric_type`/`validation_rules` format, an OpenTelemetry
Weaver registry) is read into these classes; evaluation and every export work from them only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

REQUIREMENT_LEVELS = ("required", "recommended", "opt_in")
INSTRUMENTS = ("counter", "updowncounter", "gauge", "histogram")
TEMPORALITIES = ("any", "delta", "cumulative")
ATTRIBUTE_TYPES = ("any", "string", "int", "double", "number", "boolean", "string[]")
UNKNOWN_POLICIES = ("allow", "violation")
SPAN_KINDS = ("any", "internal", "server", "client", "producer", "consumer")


@dataclass
class Attribute:
    """One attribute of a metric point, event or resource."""

    name: str
    requirement: str = "recommended"
    type: str = "any"
    values: tuple[Any, ...] | None = None  # allowed values (an enum), None = any value
    brief: str = ""
    min: float | None = None  # for numeric attributes (e.g. cost_usd >= 0)
    max: float | None = None
    sensitive: bool = False  # redacted in every output (prompt text, tool parameters)
    pattern: str | None = None  # a regular expression the whole value may match instead of `values`

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requirement": self.requirement}
        if self.type != "any":
            out["type"] = self.type
        if self.values is not None:
            out["values"] = list(self.values)
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.min is not None or self.max is not None:
            out["range"] = [self.min, self.max]
        if self.brief:
            out["brief"] = self.brief
        if self.sensitive:
            out["sensitive"] = True
        return out


@dataclass
class MetricRule:
    """What one metric must look like."""

    name: str  # OpenTelemetry name (claude_code.token.usage); for seed contracts the Prometheus name
    instrument: str = "counter"
    unit: str | None = None  # None = not checked; "" = must be empty
    temporality: str = "any"
    description: str = ""
    attributes: dict[str, Attribute] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    cardinality: dict[str, int] = field(
        default_factory=dict
    )  # attribute -> max distinct values; "*" = series
    prometheus_name: str | None = None  # set when the contract names the metric as Prometheus shows it
    prometheus_help: str | None = None
    prometheus_type: str | None = None
    value_type: str = "any"  # any | int | double
    required_fields: tuple[str, ...] = ()  # seed dialect: value, labels, timestamp
    label_style: str = "otel"  # "prometheus": attribute keys are compared as Prometheus labels (seed)

    @property
    def monotonic(self) -> bool | None:
        if self.instrument == "counter":
            return True
        if self.instrument == "updowncounter":
            return False
        return None

    @property
    def kind(self) -> str:
        """The OTLP data field this instrument is exported in."""
        return {"counter": "sum", "updowncounter": "sum", "gauge": "gauge", "histogram": "histogram"}[
            self.instrument
        ]

    def help_text(self) -> str:
        return self.prometheus_help or self.description or self.name

    def prom_type(self) -> str:
        if self.prometheus_type:
            return self.prometheus_type
        return {"counter": "counter", "updowncounter": "gauge", "gauge": "gauge", "histogram": "histogram"}[
            self.instrument
        ]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"instrument": self.instrument}
        if self.unit is not None:
            out["unit"] = self.unit
        out["temporality"] = self.temporality
        if self.description:
            out["description"] = self.description
        if self.value_type != "any":
            out["value_type"] = self.value_type
        if self.min is not None or self.max is not None:
            out["range"] = [self.min, self.max]
        if self.cardinality:
            out["cardinality"] = dict(self.cardinality)
        if self.attributes:
            out["attributes"] = {k: a.to_dict() for k, a in self.attributes.items()}
        if self.label_style != "otel":
            out["match"] = self.label_style  # named and labelled as Prometheus shows it (seed format)
        if self.required_fields:
            out["required_fields"] = list(self.required_fields)
        if self.prometheus_name or self.prometheus_help or self.prometheus_type:
            prom: dict[str, Any] = {}
            if self.prometheus_name:
                prom["name"] = self.prometheus_name
            if self.prometheus_help:
                prom["help"] = self.prometheus_help
            if self.prometheus_type:
                prom["type"] = self.prometheus_type
            out["prometheus"] = prom
        return out


@dataclass
class EventRule:
    """What one event (an OTLP log record with `event.name`) must carry."""

    name: str
    description: str = ""
    attributes: dict[str, Attribute] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["attributes"] = {k: a.to_dict() for k, a in self.attributes.items()}
        return out


@dataclass
class SpanRule:
    """What one span must look like: its kind, attributes and where it sits in the trace."""

    name: str
    kind: str = "any"
    description: str = ""
    attributes: dict[str, Attribute] = field(default_factory=dict)
    # Allowed parent span names; None = the parent is not checked. `root`: the span may have no parent.
    parents: tuple[str, ...] | None = None
    root: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.description:
            out["description"] = self.description
        if self.root:
            out["root"] = True
        if self.parents is not None:
            out["parents"] = list(self.parents)
        out["attributes"] = {k: a.to_dict() for k, a in self.attributes.items()}
        return out


@dataclass
class ContractSpec:
    """A whole contract, independent of the file dialect it came from."""

    name: str = "contract"
    version: str = "1"
    description: str = ""
    dialect: str = "labctl"
    source: str = ""
    resource: dict[str, Attribute] = field(default_factory=dict)
    common_attributes: dict[str, Attribute] = field(default_factory=dict)  # allowed on every metric/event
    metrics: dict[str, MetricRule] = field(default_factory=dict)
    events: dict[str, EventRule] = field(default_factory=dict)
    spans: dict[str, SpanRule] = field(default_factory=dict)
    unknown_metrics: str = "violation"
    unknown_events: str = "violation"
    unknown_spans: str = "allow"  # a contract without spans says nothing about traces
    unknown_attributes: str = "allow"
    logs_without_event_name: str = "allow"
    prometheus_namespace: str = ""

    def sensitive_attributes(self) -> set[str]:
        keys = {a.name for a in self.common_attributes.values() if a.sensitive}
        for ev in self.events.values():
            keys.update(a.name for a in ev.attributes.values() if a.sensitive)
        for m in self.metrics.values():
            keys.update(a.name for a in m.attributes.values() if a.sensitive)
        for sp in self.spans.values():
            keys.update(a.name for a in sp.attributes.values() if a.sensitive)
        return keys

    def to_dict(self) -> dict[str, Any]:
        """The contract in labctl's own YAML dialect (also what /api/contract serves)."""
        out: dict[str, Any] = {
            "contract": self.name,
            "version": self.version,
        }
        if self.description:
            out["description"] = self.description
        out["policy"] = {
            "unknown_metrics": self.unknown_metrics,
            "unknown_events": self.unknown_events,
            "unknown_spans": self.unknown_spans,
            "unknown_attributes": self.unknown_attributes,
            "logs_without_event_name": self.logs_without_event_name,
        }
        if self.prometheus_namespace:
            out["prometheus_namespace"] = self.prometheus_namespace
        if self.resource:
            out["resource"] = {k: a.to_dict() for k, a in self.resource.items()}
        if self.common_attributes:
            out["common_attributes"] = {k: a.to_dict() for k, a in self.common_attributes.items()}
        out["metrics"] = {k: m.to_dict() for k, m in self.metrics.items()}
        out["events"] = {k: e.to_dict() for k, e in self.events.items()}
        if self.spans:
            out["spans"] = {k: s.to_dict() for k, s in self.spans.items()}
        return out


def finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    return value if math.isfinite(value) else None
