"""Reading a contract file in any of its dialects into a ContractSpec, with `file:line` errors.

Dialects, detected from the content:
- labctl: `metrics:` entries with `instrument:` (and `events:`), see lab/contracts/claude-code.yaml;
- seed:   `metrics:` entries with `metric_type:` / `labels:` / `validation_rules:` / `prometheus_format:`;
- weaver: an OpenTelemetry Weaver registry file (`groups:` of type metric / event / attribute_group).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from labctl.contract.model import (
    ATTRIBUTE_TYPES,
    INSTRUMENTS,
    REQUIREMENT_LEVELS,
    SPAN_KINDS,
    TEMPORALITIES,
    UNKNOWN_POLICIES,
    Attribute,
    ContractSpec,
    EventRule,
    MetricRule,
    SpanRule,
)
from labctl.contract.yamlsrc import Where, load_yaml, read_yaml_file
from labctl.errors import LabError

_TOP_KEYS = (
    "contract",
    "version",
    "description",
    "policy",
    "prometheus_namespace",
    "resource",
    "common_attributes",
    "metrics",
    "events",
    "spans",
)
_POLICY_KEYS = (
    "unknown_metrics",
    "unknown_events",
    "unknown_spans",
    "unknown_attributes",
    "logs_without_event_name",
)
_METRIC_KEYS = (
    "instrument",
    "unit",
    "temporality",
    "description",
    "value_type",
    "range",
    "cardinality",
    "attributes",
    "prometheus",
    "match",
    "required_fields",
)
_EVENT_KEYS = ("description", "attributes")
_SPAN_KEYS = ("kind", "description", "attributes", "parents", "root")
_ATTR_KEYS = ("requirement", "type", "values", "pattern", "range", "brief", "sensitive")
_SEED_KEYS = ("metric_type", "labels", "validation_rules", "prometheus_format", "description", "help", "unit")
_SEED_RULE_KEYS = ("required_fields", "required_labels", "value_range")
_SEED_FIELDS = ("value", "labels", "timestamp")
_SEED_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "histogram",
    "updowncounter": "updowncounter",
}


def parse_contract_text(text: str, source: str) -> ContractSpec:
    return parse_contract_data(load_yaml(text, source), source)


def read_contract_file(path: Path) -> ContractSpec:
    return parse_contract_data(read_yaml_file(path), str(path))


def parse_contract_data(data: Any, source: str) -> ContractSpec:
    where = Where(source)
    if not isinstance(data, dict):
        raise LabError(
            f"{source}: a contract must be a YAML mapping with `metrics:` and/or `events:` (or Weaver `groups:`)",
            "start from lab/contracts/claude-code.yaml",
        )
    if "groups" in data:
        from labctl.contract.weaver import parse_weaver

        return parse_weaver([(data, source)])
    metrics = data.get("metrics")
    if isinstance(metrics, dict) and any(
        isinstance(m, dict) and ("metric_type" in m or "validation_rules" in m or "prometheus_format" in m)
        for m in metrics.values()
    ):
        return _parse_seed(data, where)
    return _parse_labctl(data, where)


# --- helpers ---------------------------------------------------------------------------------------


def _choice(where: Where, node: Any, key: str, value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise where.fail(node, key, f"{what}: '{key}' is {value!r}", f"use one of: {', '.join(allowed)}")
    return str(value)


def _range(where: Where, node: Any, key: str, value: Any, what: str) -> tuple[float | None, float | None]:
    if not isinstance(value, list) or len(value) != 2:
        raise where.fail(
            node, key, f"{what}: '{key}' must be [min, max]", "e.g. range: [0, null] (null = open)"
        )
    out: list[float | None] = []
    for v in value:
        if v is None:
            out.append(None)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        else:
            raise where.fail(node, key, f"{what}: '{key}' bound {v!r} is not a number", "use numbers or null")
    lo, hi = out
    if lo is not None and hi is not None and lo > hi:
        raise where.fail(node, key, f"{what}: '{key}' minimum {lo} is above maximum {hi}", "swap the bounds")
    return lo, hi


def _attribute(where: Where, name: str, spec: Any, parent: Any, what: str) -> Attribute:
    if spec is None or isinstance(spec, str):
        level = spec or "recommended"
        return Attribute(
            name=name,
            requirement=_choice(where, parent, name, level, REQUIREMENT_LEVELS, f"{what} attribute '{name}'"),
        )
    if not isinstance(spec, dict):
        raise where.fail(
            parent,
            name,
            f"{what} attribute '{name}' must be a requirement level or a mapping",
            "e.g. `model: required` or `type: {requirement: required, values: [input, output]}`",
        )
    w = f"{what} attribute '{name}'"
    where.check_keys(spec, _ATTR_KEYS, w)
    attr = Attribute(name=name)
    attr.requirement = _choice(
        where, spec, "requirement", spec.get("requirement", "recommended"), REQUIREMENT_LEVELS, w
    )
    attr.type = _choice(where, spec, "type", spec.get("type", "any"), ATTRIBUTE_TYPES, w)
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise where.fail(spec, "values", f"{w}: 'values' must be a non-empty list", "e.g. values: [a, b]")
        attr.values = tuple(values)
    if "pattern" in spec:
        pattern = spec["pattern"]
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise where.fail(
                spec,
                "pattern",
                f"{w}: 'pattern' is not a regular expression: {exc}",
                "e.g. pattern: '^agent:.+$' (the whole value must match)",
            ) from None
        attr.pattern = str(pattern)
    if "range" in spec:
        attr.min, attr.max = _range(where, spec, "range", spec["range"], w)
    attr.brief = str(spec.get("brief", "") or "")
    sensitive = spec.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise where.fail(spec, "sensitive", f"{w}: 'sensitive' must be true or false", "sensitive: true")
    attr.sensitive = sensitive
    return attr


def _attributes(where: Where, node: Any, key: str, parent: Any, what: str) -> dict[str, Attribute]:
    mapping = where.expect_map(node, key, f"{what} '{key}'", parent)
    return {str(k): _attribute(where, str(k), v, mapping, what) for k, v in mapping.items()}


# --- labctl dialect --------------------------------------------------------------------------------


def _parse_labctl(data: dict[str, Any], where: Where) -> ContractSpec:
    where.check_keys(data, _TOP_KEYS, "contract")
    spec = ContractSpec(dialect="labctl", source=where.source)
    spec.name = str(data.get("contract", "contract"))
    spec.version = str(data.get("version", "1"))
    spec.description = str(data.get("description", "") or "")
    spec.prometheus_namespace = str(data.get("prometheus_namespace", "") or "")
    policy = where.expect_map(data.get("policy"), "policy", "policy", data)
    where.check_keys(policy, _POLICY_KEYS, "policy")
    for key in _POLICY_KEYS:
        if key in policy:
            setattr(spec, key, _choice(where, policy, key, policy[key], UNKNOWN_POLICIES, "policy"))
    spec.resource = _attributes(where, data.get("resource"), "resource", data, "resource")
    spec.common_attributes = _attributes(
        where, data.get("common_attributes"), "common_attributes", data, "common"
    )
    metrics = where.expect_map(data.get("metrics"), "metrics", "metrics", data)
    for name, m in metrics.items():
        spec.metrics[str(name)] = _metric(where, str(name), m, metrics)
    events = where.expect_map(data.get("events"), "events", "events", data)
    for name, e in events.items():
        what = f"event '{name}'"
        e = where.expect_map(e, str(name), what, events)
        where.check_keys(e, _EVENT_KEYS, what)
        spec.events[str(name)] = EventRule(
            name=str(name),
            description=str(e.get("description", "") or ""),
            attributes=_attributes(where, e.get("attributes"), "attributes", e, what),
        )
    spans = where.expect_map(data.get("spans"), "spans", "spans", data)
    for name, sp in spans.items():
        spec.spans[str(name)] = _span(where, str(name), sp, spans)
    for rule in spec.spans.values():
        for parent in rule.parents or ():
            if parent not in spec.spans:
                raise where.fail(
                    spans.get(rule.name),
                    "parents",
                    f"span '{rule.name}': parent '{parent}' is not a span of this contract",
                    f"add a spans.{parent} entry, or fix the name",
                )
    if not spec.metrics and not spec.events and not spec.spans:
        raise where.fail(
            data,
            None,
            "the contract defines no metrics, events or spans",
            "add a `metrics:`, `events:` or `spans:` section (see lab/contracts/claude-code.yaml)",
        )
    return spec


def _span(where: Where, name: str, sp: Any, parent: Any) -> SpanRule:
    what = f"span '{name}'"
    sp = where.expect_map(sp, name, what, parent)
    where.check_keys(sp, _SPAN_KEYS, what)
    rule = SpanRule(name=name, description=str(sp.get("description", "") or ""))
    rule.kind = _choice(where, sp, "kind", sp.get("kind", "any"), SPAN_KINDS, what)
    rule.attributes = _attributes(where, sp.get("attributes"), "attributes", sp, what)
    if "parents" in sp:
        parents = where.expect_list(sp.get("parents"), "parents", f"{what} parents", sp)
        if not parents:
            raise where.fail(
                sp,
                "parents",
                f"{what}: 'parents' is empty",
                "list the allowed parent span names, or write root: true for a root span",
            )
        rule.parents = tuple(str(p) for p in parents)
    root = sp.get("root", False)
    if not isinstance(root, bool):
        raise where.fail(sp, "root", f"{what}: 'root' must be true or false", "root: true")
    rule.root = root
    return rule


def _metric(where: Where, name: str, m: Any, parent: Any) -> MetricRule:
    what = f"metric '{name}'"
    m = where.expect_map(m, name, what, parent)
    where.check_keys(m, _METRIC_KEYS, what)
    if "instrument" not in m:
        raise where.fail(
            m, None, f"{what} has no 'instrument'", f"add instrument: one of {', '.join(INSTRUMENTS)}"
        )
    rule = MetricRule(name=name)
    rule.instrument = _choice(where, m, "instrument", m["instrument"], INSTRUMENTS, what)
    if "unit" in m:
        rule.unit = "" if m["unit"] is None else str(m["unit"])
    rule.temporality = _choice(where, m, "temporality", m.get("temporality", "any"), TEMPORALITIES, what)
    if rule.instrument == "gauge" and rule.temporality != "any":
        raise where.fail(m, "temporality", f"{what}: a gauge has no temporality", "remove 'temporality'")
    rule.description = str(m.get("description", "") or "")
    rule.value_type = _choice(
        where, m, "value_type", m.get("value_type", "any"), ("any", "int", "double"), what
    )
    if "range" in m:
        rule.min, rule.max = _range(where, m, "range", m["range"], what)
    card = where.expect_map(m.get("cardinality"), "cardinality", f"{what} cardinality", m)
    for key, limit in card.items():
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise where.fail(
                card,
                key,
                f"{what}: cardinality limit for '{key}' must be a positive integer",
                "e.g. cardinality: {session.id: 1000, '*': 5000}",
            )
        rule.cardinality[str(key)] = limit
    rule.attributes = _attributes(where, m.get("attributes"), "attributes", m, what)
    # match: prometheus — the name and attribute keys are as Prometheus shows them (the seed's way)
    rule.label_style = _choice(where, m, "match", m.get("match", "otel"), ("otel", "prometheus"), what)
    fields = where.expect_list(m.get("required_fields"), "required_fields", f"{what} required_fields", m)
    for f in fields:
        if f not in _SEED_FIELDS:
            raise where.fail(
                m,
                "required_fields",
                f"{what}: unknown required field {f!r}",
                f"use any of: {', '.join(_SEED_FIELDS)}",
            )
    rule.required_fields = tuple(str(f) for f in fields)
    prom = where.expect_map(m.get("prometheus"), "prometheus", f"{what} prometheus", m)
    where.check_keys(prom, ("name", "help", "type"), f"{what} prometheus")
    rule.prometheus_name = prom.get("name")
    rule.prometheus_help = prom.get("help")
    if "type" in prom:
        rule.prometheus_type = _choice(
            where, prom, "type", prom["type"], ("counter", "gauge", "histogram", "summary", "untyped"), what
        )
    return rule


# --- seed dialect ----------------------------------------------------------------------------------

_HELP_RE = re.compile(r"^#\s*HELP\s+(\S+)\s+(.*)$")
_TYPE_RE = re.compile(r"^#\s*TYPE\s+(\S+)\s+(\S+)")


def _parse_seed(data: dict[str, Any], where: Where) -> ContractSpec:
    """The seed's format: Prometheus-named metrics with labels and validation_rules.

    Labels are compared with the OTLP attributes as the Collector would turn them into labels
    (`session.id` → `session_id`), and the metric name with the Prometheus name of the OTLP metric.
    Other top-level keys of the seed's proxy config (ports, thresholds) are not part of the contract.
    """
    spec = ContractSpec(dialect="seed", source=where.source, name=str(data.get("contract", "seed-contract")))
    spec.unknown_metrics = "violation"
    spec.unknown_events = "allow"  # the seed format has no events
    metrics = where.expect_map(data.get("metrics"), "metrics", "metrics", data)
    for name, m in metrics.items():
        name = str(name)
        what = f"metric '{name}'"
        m = where.expect_map(m, name, what, metrics)
        where.check_keys(m, _SEED_KEYS, what)
        if "metric_type" not in m:
            raise where.fail(
                m,
                None,
                f"{what} has no 'metric_type'",
                "add metric_type: counter | gauge | histogram | summary",
            )
        mtype = _choice(where, m, "metric_type", m["metric_type"], tuple(_SEED_TYPES), what)
        rule = MetricRule(
            name=name, instrument=_SEED_TYPES[mtype], prometheus_name=name, label_style="prometheus"
        )
        if mtype == "summary":
            rule.prometheus_type = "summary"
        if "unit" in m:
            rule.unit = str(m["unit"] or "")
        rule.description = str(m.get("description", "") or m.get("help", "") or "")
        labels = where.expect_list(m.get("labels"), "labels", f"{what} labels", m)
        rules = where.expect_map(m.get("validation_rules"), "validation_rules", f"{what} validation_rules", m)
        where.check_keys(rules, _SEED_RULE_KEYS, f"{what} validation_rules")
        required_labels = where.expect_list(
            rules.get("required_labels"), "required_labels", f"{what} required_labels", rules
        )
        for label in required_labels:
            if label not in labels:
                raise where.fail(
                    rules,
                    "required_labels",
                    f"{what}: required label '{label}' is not in 'labels'",
                    f"add '{label}' to labels: or remove it from required_labels",
                )
        for label in labels:
            rule.attributes[str(label)] = Attribute(
                name=str(label), requirement="required" if label in required_labels else "recommended"
            )
        fields = where.expect_list(
            rules.get("required_fields"), "required_fields", f"{what} required_fields", rules
        )
        for f in fields:
            if f not in _SEED_FIELDS:
                raise where.fail(
                    rules,
                    "required_fields",
                    f"{what}: unknown required field {f!r}",
                    f"use any of: {', '.join(_SEED_FIELDS)}",
                )
        rule.required_fields = tuple(str(f) for f in fields)
        if "value_range" in rules:
            rule.min, rule.max = _range(where, rules, "value_range", rules["value_range"], what)
        fmt = m.get("prometheus_format")
        if fmt is not None:
            for line in str(fmt).splitlines():
                line = line.strip()
                if not line:
                    continue
                help_m, type_m = _HELP_RE.match(line), _TYPE_RE.match(line)
                if help_m:
                    if help_m.group(1) != name:
                        raise where.fail(
                            m,
                            "prometheus_format",
                            f"{what}: HELP line names '{help_m.group(1)}'",
                            f"write # HELP {name} ...",
                        )
                    rule.prometheus_help = help_m.group(2).strip()
                elif type_m:
                    if type_m.group(1) != name:
                        raise where.fail(
                            m,
                            "prometheus_format",
                            f"{what}: TYPE line names '{type_m.group(1)}'",
                            f"write # TYPE {name} ...",
                        )
                    rule.prometheus_type = _choice(
                        where,
                        m,
                        "prometheus_format",
                        type_m.group(2),
                        ("counter", "gauge", "histogram", "summary", "untyped"),
                        f"{what} TYPE",
                    )
                else:
                    raise where.fail(
                        m,
                        "prometheus_format",
                        f"{what}: prometheus_format line {line!r} is not a # HELP or # TYPE line",
                        "keep only the HELP and TYPE comment lines",
                    )
        spec.metrics[name] = rule
    if not spec.metrics:
        raise where.fail(
            data, "metrics", "the seed contract defines no metrics", "add entries under metrics:"
        )
    return spec
