"""OpenTelemetry Weaver registry format (semantic convention YAML, `groups:`) — read and write.

Metrics are `type: metric` groups (metric_name, instrument, unit), events `type: event` groups (name),
spans `type: span` groups (span_kind; the name, parents and root under annotations.labctl),
attributes carry `requirement_level` and enum `members`. What Weaver has no field for (temporality,
value ranges, cardinality limits, sensitivity, the contract's policy) travels in `annotations.labctl`, so
an export followed by an import gives back the same contract; a plain Weaver registry without those
annotations is read as a contract with the defaults.

Weaver ids are global in a registry; a metric-specific attribute such as `type` is written inline in
its metric group, as Weaver allows for prototyping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.contract.model import SPAN_KINDS, Attribute, ContractSpec, EventRule, MetricRule, SpanRule
from labctl.contract.yamlsrc import Where, read_yaml_file
from labctl.errors import LabError

COMMON_GROUP = "labctl.common_attributes"
RESOURCE_GROUP = "labctl.resource"
_WEAVER_TYPES = {
    "string",
    "int",
    "double",
    "boolean",
    "string[]",
    "int[]",
    "double[]",
    "boolean[]",
    "any",
    "template[string]",
}


# --- export --------------------------------------------------------------------------------------


def _attr_out(a: Attribute) -> dict[str, Any]:
    out: dict[str, Any] = {"id": a.name}
    if a.values is not None:
        out["type"] = {
            "members": [{"id": _member_id(v), "value": v, "stability": "development"} for v in a.values]
        }
    else:
        out["type"] = {
            "int": "int",
            "double": "double",
            "number": "double",
            "boolean": "boolean",
            "string[]": "string[]",
        }.get(a.type, "string")
    out["brief"] = a.brief or a.name
    out["requirement_level"] = a.requirement
    out["stability"] = "development"
    ann: dict[str, Any] = {}
    if a.type in ("number", "any"):
        ann["type"] = a.type
    if a.min is not None or a.max is not None:
        ann["range"] = [a.min, a.max]
    if a.sensitive:
        ann["sensitive"] = True
    if a.pattern is not None:
        ann["pattern"] = a.pattern
    if ann:
        out["annotations"] = {"labctl": ann}
    return out


def _member_id(v: Any) -> str:
    text = str(v).lower()
    return "".join(c if c.isalnum() else "_" for c in text) or "empty"


def to_weaver(spec: ContractSpec) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    groups.append(
        {
            "id": RESOURCE_GROUP,
            "type": "attribute_group",
            "brief": f"Resource attributes every {spec.name} resource carries",
            "attributes": [_attr_out(a) for a in spec.resource.values()],
            "annotations": {
                "labctl": {
                    "contract": spec.name,
                    "version": spec.version,
                    "description": spec.description,
                    "prometheus_namespace": spec.prometheus_namespace,
                    "policy": {
                        "unknown_metrics": spec.unknown_metrics,
                        "unknown_events": spec.unknown_events,
                        "unknown_spans": spec.unknown_spans,
                        "unknown_attributes": spec.unknown_attributes,
                        "logs_without_event_name": spec.logs_without_event_name,
                    },
                }
            },
        }
    )
    groups.append(
        {
            "id": COMMON_GROUP,
            "type": "attribute_group",
            "brief": "Standard attributes allowed on every metric and event",
            "attributes": [_attr_out(a) for a in spec.common_attributes.values()],
        }
    )
    for m in spec.metrics.values():
        g: dict[str, Any] = {
            "id": f"metric.{m.name}",
            "type": "metric",
            "metric_name": m.name,
            "brief": m.description or m.name,
            "instrument": m.instrument,
            "unit": m.unit or "1",
            "stability": "development",
        }
        if m.attributes:
            g["attributes"] = [_attr_out(a) for a in m.attributes.values()]
        ann: dict[str, Any] = {"temporality": m.temporality, "unit": m.unit}
        if m.min is not None or m.max is not None:
            ann["range"] = [m.min, m.max]
        if m.cardinality:
            ann["cardinality"] = dict(m.cardinality)
        if m.value_type != "any":
            ann["value_type"] = m.value_type
        if m.prometheus_name or m.prometheus_help or m.prometheus_type:
            ann["prometheus"] = {
                k: v
                for k, v in (
                    ("name", m.prometheus_name),
                    ("help", m.prometheus_help),
                    ("type", m.prometheus_type),
                )
                if v
            }
        if m.label_style != "otel":
            ann["label_style"] = m.label_style
        if m.required_fields:
            ann["required_fields"] = list(m.required_fields)
        g["annotations"] = {"labctl": ann}
        groups.append(g)
    for e in spec.events.values():
        groups.append(
            {
                "id": f"event.{e.name}",
                "type": "event",
                "name": e.name,
                "brief": e.description or e.name,
                "stability": "development",
                "attributes": [_attr_out(a) for a in e.attributes.values()],
            }
        )
    for sp in spec.spans.values():
        g = {
            "id": f"span.{sp.name}",
            "type": "span",
            "brief": sp.description or sp.name,
            "stability": "development",
        }
        if sp.kind != "any":
            g["span_kind"] = sp.kind
        if sp.attributes:
            g["attributes"] = [_attr_out(a) for a in sp.attributes.values()]
        span_ann: dict[str, Any] = {"name": sp.name}
        if sp.parents is not None:
            span_ann["parents"] = list(sp.parents)
        if sp.root:
            span_ann["root"] = True
        g["annotations"] = {"labctl": span_ann}
        groups.append(g)
    return {"groups": groups}


def dump_weaver(spec: ContractSpec) -> str:
    header = (
        f"# OpenTelemetry Weaver registry for contract '{spec.name}' (written by labctl contract export).\n"
        "# labctl-specific rules are kept under annotations.labctl.\n"
    )
    return header + yaml.safe_dump(to_weaver(spec), sort_keys=False, allow_unicode=True, width=110)


# --- import --------------------------------------------------------------------------------------


def _requirement(where: Where, node: Any, value: Any) -> str:
    if value is None:
        return "recommended"
    if isinstance(value, str):
        if value in ("required", "recommended", "opt_in"):
            return value
    elif isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key == "conditionally_required":
            return "recommended"  # a condition we cannot evaluate: check it like a recommended one
        if key in ("recommended", "required", "opt_in"):
            return str(key)
    raise where.fail(
        node,
        "requirement_level",
        f"unknown requirement_level {value!r}",
        "use required, recommended, opt_in or {conditionally_required: ...}",
    )


def _attr_in(where: Where, node: Any, registry: dict[str, tuple[Any, Where]], what: str) -> Attribute:
    if not isinstance(node, dict):
        raise where.fail(
            node, None, f"{what}: an attribute must be a mapping with 'id' or 'ref'", "e.g. - ref: session.id"
        )
    base: dict[str, Any] = {}
    if "ref" in node:
        ref = node["ref"]
        if ref not in registry:
            raise where.fail(
                node,
                "ref",
                f"{what}: attribute ref '{ref}' is not defined in the registry",
                "define it in an attribute_group (id: ...) or import that file too",
            )
        base = dict(registry[ref][0])
        base.update({k: v for k, v in node.items() if k != "ref"})
        name = str(ref)
    elif "id" in node:
        base = dict(node)
        name = str(node["id"])
    else:
        raise where.fail(node, None, f"{what}: attribute has neither 'id' nor 'ref'", "add id: <name>")
    attr = Attribute(name=name, requirement=_requirement(where, node, base.get("requirement_level")))
    attr.brief = str(base.get("brief", "") or "").strip()
    if attr.brief == name:
        attr.brief = ""
    typ = base.get("type", "string")
    if isinstance(typ, dict):
        members = typ.get("members")
        if not isinstance(members, list) or not members:
            raise where.fail(
                node, "type", f"{what}: enum type of '{name}' has no members", "add members: [...]"
            )
        attr.values = tuple(m.get("value") for m in members if isinstance(m, dict))
    elif typ in _WEAVER_TYPES:
        attr.type = {
            "string": "string",
            "int": "int",
            "double": "double",
            "boolean": "boolean",
            "string[]": "string[]",
        }.get(str(typ), "any")
    else:
        raise where.fail(
            node,
            "type",
            f"{what}: unknown attribute type {typ!r}",
            f"use one of {', '.join(sorted(_WEAVER_TYPES))} or an enum with members",
        )
    ann = (base.get("annotations") or {}).get("labctl") or {}
    if "type" in ann:
        attr.type = str(ann["type"])
    if "range" in ann:
        attr.min, attr.max = ann["range"]
    attr.sensitive = bool(ann.get("sensitive", False))
    if "pattern" in ann:
        attr.pattern = str(ann["pattern"])
    return attr


def parse_weaver(docs: list[tuple[Any, str]]) -> ContractSpec:
    """One or more registry files (already parsed YAML, with their source names) → a contract."""
    registry: dict[str, tuple[Any, Where]] = {}
    groups: list[tuple[Any, Where]] = []
    for data, source in docs:
        where = Where(source)
        if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
            raise where.fail(
                data,
                None,
                "a Weaver registry file needs a top-level 'groups:' list",
                "see https://github.com/open-telemetry/weaver docs/registry.md",
            )
        for g in data["groups"]:
            if not isinstance(g, dict) or "id" not in g or "type" not in g:
                raise where.fail(g, None, "every Weaver group needs 'id' and 'type'", "add id: and type:")
            groups.append((g, where))
            if g["type"] == "attribute_group":
                for a in g.get("attributes") or []:
                    if isinstance(a, dict) and "id" in a:
                        registry[str(a["id"])] = (a, where)
    spec = ContractSpec(dialect="weaver", source=", ".join(s for _, s in docs), name="weaver-registry")
    for g, where in groups:
        gtype, gid = g["type"], str(g["id"])
        what = f"group '{gid}'"
        attrs = {a.name: a for a in (_attr_in(where, n, registry, what) for n in g.get("attributes") or [])}
        ann = (g.get("annotations") or {}).get("labctl") or {}
        if gtype == "attribute_group":
            if gid == RESOURCE_GROUP:
                spec.resource = attrs
                spec.name = str(ann.get("contract", spec.name))
                spec.version = str(ann.get("version", spec.version))
                spec.description = str(ann.get("description", "") or "")
                spec.prometheus_namespace = str(ann.get("prometheus_namespace", "") or "")
                for k, v in (ann.get("policy") or {}).items():
                    if hasattr(spec, k):
                        setattr(spec, k, v)
            elif gid == COMMON_GROUP:
                spec.common_attributes = attrs
        elif gtype == "resource":
            spec.resource.update(attrs)
        elif gtype == "metric":
            name = g.get("metric_name")
            if not name:
                raise where.fail(
                    g, None, f"{what}: a metric group needs 'metric_name'", "add metric_name: ..."
                )
            instrument = g.get("instrument")
            if instrument not in ("counter", "updowncounter", "gauge", "histogram"):
                raise where.fail(
                    g,
                    "instrument",
                    f"{what}: instrument {instrument!r} is not supported",
                    "use counter, updowncounter, gauge or histogram",
                )
            rule = MetricRule(name=str(name), instrument=str(instrument), attributes=attrs)
            brief = str(g.get("brief", "") or "").strip()
            rule.description = "" if brief == name else brief
            unit = g.get("unit")
            rule.unit = (
                ann["unit"]
                if "unit" in ann
                else (None if unit is None else ("" if unit == "1" else str(unit)))
            )
            rule.temporality = str(ann.get("temporality", "any"))
            if "range" in ann:
                rule.min, rule.max = ann["range"]
            rule.cardinality = {str(k): int(v) for k, v in (ann.get("cardinality") or {}).items()}
            rule.value_type = str(ann.get("value_type", "any"))
            prom = ann.get("prometheus") or {}
            rule.prometheus_name, rule.prometheus_help = prom.get("name"), prom.get("help")
            rule.prometheus_type = prom.get("type")
            rule.label_style = str(ann.get("label_style", "otel"))
            rule.required_fields = tuple(ann.get("required_fields") or ())
            spec.metrics[rule.name] = rule
        elif gtype == "event":
            name = g.get("name") or gid.removeprefix("event.")
            brief = str(g.get("brief", "") or "").strip()
            spec.events[str(name)] = EventRule(
                name=str(name), description="" if brief == name else brief, attributes=attrs
            )
        elif gtype == "span":
            name = ann.get("name") or gid.removeprefix("span.")
            brief = str(g.get("brief", "") or "").strip()
            kind = str(g.get("span_kind", "any"))
            if kind not in SPAN_KINDS:
                raise where.fail(
                    g,
                    "span_kind",
                    f"{what}: span_kind {kind!r} is not known",
                    "use client, server, internal, producer or consumer",
                )
            parents = ann.get("parents")
            spec.spans[str(name)] = SpanRule(
                name=str(name),
                kind=kind,
                description="" if brief == name else brief,
                attributes=attrs,
                parents=tuple(str(p) for p in parents) if parents is not None else None,
                root=bool(ann.get("root", False)),
            )
        # entity groups describe other things: not part of this contract
    if not spec.metrics and not spec.events and not spec.spans:
        raise LabError(
            f"{spec.source}: the Weaver registry defines no metric or event groups",
            "add groups of type metric (metric_name, instrument, unit), event (name) or span",
        )
    return spec


def read_weaver_dir(path: Path) -> ContractSpec:
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
    if not files:
        raise LabError(
            f"{path} has no .yaml files", "point at a Weaver registry directory or a contract file"
        )
    return parse_weaver([(read_yaml_file(f), str(f)) for f in files])
