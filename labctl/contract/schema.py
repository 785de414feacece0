"""JSON Schema (draft 2020-12) for the proxy's payload records — the lines of its JSON Lines log and the
records of /api/payloads/{id}.

Without a contract it describes the record shape. With one, it adds per-metric and per-event rules
(`if name == X then attributes must ...`), so a JSON Schema validator alone can tell a conforming record
from a violating one, the way `labctl contract check` does.
"""

from __future__ import annotations

from typing import Any

from labctl.contract.model import Attribute

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int": {"type": "integer"},
    "double": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string[]": {"type": "array", "items": {"type": "string"}},
    "number": {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?[0-9.eE+-]+$"}]},
}

VIOLATION = {
    "type": "object",
    "required": ["path", "rule", "message"],
    "properties": {"path": {"type": "string"}, "rule": {"type": "string"}, "message": {"type": "string"}},
}

_VALUE = {
    "anyOf": [{"type": "number"}, {"type": "null"}, {"enum": ["NaN", "+Inf", "-Inf"]}, {"type": "object"}]
}


def base_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://labctl.invalid/schemas/payload-record.json",
        "title": "labctl proxy payload record",
        "description": "One data point, event (log record) or span as the logging proxy saw it.",
        "type": "object",
        "required": ["signal", "resource", "scope", "name", "attributes", "value", "verdict", "violations"],
        "properties": {
            "signal": {"enum": ["metrics", "logs", "traces"]},
            "resource": {"type": "object"},
            "scope": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
            },
            "name": {"type": ["string", "null"]},
            "kind": {
                "enum": [
                    "sum",
                    "gauge",
                    "histogram",
                    "exponential_histogram",
                    "summary",
                    "event",
                    "log",
                    "span",
                    None,
                ]
            },
            "unit": {"type": "string"},
            "temporality": {"enum": ["delta", "cumulative", "unspecified", ""]},
            "monotonic": {"type": "boolean"},
            "attributes": {"type": "object"},
            "value": _VALUE,
            "body": {},
            "severity": {"type": ["string", "null"]},
            "start_time_unix_nano": {"type": "integer", "minimum": 0},
            "time_unix_nano": {"type": "integer", "minimum": 0},
            "time": {"type": ["string", "null"]},
            "trace_id": {"type": "string"},
            "span_id": {"type": "string"},
            "parent_span_id": {"type": "string"},
            "span_kind": {"enum": ["unspecified", "internal", "server", "client", "producer", "consumer"]},
            "payload": {"type": "integer"},
            "verdict": {"enum": ["ok", "violation"]},
            "violations": {"type": "array", "items": VIOLATION},
        },
        "allOf": [
            {
                "if": {"properties": {"verdict": {"const": "ok"}}},
                "then": {"properties": {"violations": {"maxItems": 0}}},
            },
            {
                "if": {"properties": {"verdict": {"const": "violation"}}},
                "then": {"properties": {"violations": {"minItems": 1}}},
            },
        ],
    }


def _attr_schema(a: Attribute) -> dict[str, Any]:
    s: dict[str, Any] = {}
    if a.values is not None:
        s["enum"] = list(a.values)
    elif a.type in _JSON_TYPES:
        s.update(_JSON_TYPES[a.type])
    if a.min is not None or a.max is not None:
        bounds: dict[str, Any] = {}
        if a.min is not None:
            bounds["minimum"] = a.min
        if a.max is not None:
            bounds["maximum"] = a.max
        s = (
            {"allOf": [s, {"if": {"type": "number"}, "then": bounds}]}
            if s
            else {"if": {"type": "number"}, "then": bounds}
        )
    if a.brief:
        s["description"] = a.brief
    return s


def _attrs_object(attrs: dict[str, Attribute], common: dict[str, Attribute]) -> dict[str, Any]:
    merged = dict(common)
    merged.update(attrs)
    return {
        "type": "object",
        "required": [k for k, a in merged.items() if a.requirement == "required"],
        "properties": {k: _attr_schema(a) for k, a in merged.items()},
    }


def record_schema(contract: Any = None) -> dict[str, Any]:
    """The record schema; with a Contract (or ContractSpec), plus that contract's rules for ok records."""
    schema = base_schema()
    if contract is None:
        return schema
    spec = getattr(contract, "spec", contract)
    schema["title"] = f"labctl proxy payload record (contract {spec.name})"
    rules: list[dict[str, Any]] = []
    prom_style = any(m.label_style == "prometheus" for m in spec.metrics.values())
    for m in spec.metrics.values():
        if m.label_style == "prometheus":
            continue  # seed-style rules compare Prometheus labels; only the record shape applies
        value: dict[str, Any] = {"type": "number"}
        if m.min is not None:
            value["minimum"] = m.min
        if m.max is not None:
            value["maximum"] = m.max
        props: dict[str, Any] = {
            "kind": {"const": m.kind},
            "value": value,
            "attributes": _attrs_object(m.attributes, spec.common_attributes),
        }
        if m.unit is not None:
            props["unit"] = {"const": m.unit}
        if m.monotonic is not None:
            props["monotonic"] = {"const": m.monotonic}
        if m.temporality != "any":
            props["temporality"] = {"const": m.temporality}
        rules.append(
            {
                "if": {
                    "properties": {"signal": {"const": "metrics"}, "name": {"const": m.name}},
                    "required": ["signal", "name"],
                },
                "then": {"properties": props},
            }
        )
    for e in spec.events.values():
        names = [e.name]
        if "." in e.name:
            names.append(e.name.split(".", 1)[1])
        rules.append(
            {
                "if": {
                    "properties": {"signal": {"const": "logs"}, "name": {"enum": names}},
                    "required": ["signal", "name"],
                },
                "then": {"properties": {"attributes": _attrs_object(e.attributes, spec.common_attributes)}},
            }
        )
    if spec.resource:
        rules.append({"properties": {"resource": _attrs_object(spec.resource, {})}})
    if spec.unknown_metrics == "violation" and not prom_style:
        rules.append(
            {
                "if": {"properties": {"signal": {"const": "metrics"}}, "required": ["signal"]},
                "then": {"properties": {"name": {"enum": list(spec.metrics)}}},
            }
        )
    # Contract rules describe conforming data: they bind records whose verdict is ok.
    schema["allOf"].append(
        {
            "if": {"properties": {"verdict": {"const": "ok"}}, "required": ["verdict"]},
            "then": {"allOf": rules},
        }
    )
    return schema
