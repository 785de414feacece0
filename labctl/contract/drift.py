"""What the telemetry sent has that the contract lacks, as changes and as a patched contract.

`propose(spec, shape)` compares a contract with the shape of what clients really sent
(labctl.contract.shape) and returns the patched contract plus the list of changes: new metrics, events
and spans, new attributes, new enum members, new span parents, and units, instruments, kinds or types
that differ. The changes follow Weaver's schema-changes layout (`changes.metrics[] = {type: added,
name: ...}`), extended with attribute-level entries; `registry_diff` renders the patch as a unified
diff of the two Weaver registries, the way an instructor reviews it before writing the file.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any

from labctl.contract.model import Attribute, ContractSpec, EventRule, MetricRule, SpanRule
from labctl.contract.shape import AttrShape, ItemShape, TelemetryShape

_EVENT_STANDARD = ("event.name",)  # carried by every event: the name itself is never an attribute rule
_COMPATIBLE = {  # contract type -> observed types it accepts
    "any": None,
    "string": {"string"},
    "int": {"int"},
    "double": {"int", "double"},
    "number": {"int", "double", "number"},
    "boolean": {"boolean"},
    "string[]": {"string[]"},
}
_MAX_SHOWN = 4


@dataclass(frozen=True)
class Change:
    """One difference between the contract and the telemetry (one line of the proposal)."""

    type: str  # added | updated
    signal: str  # metrics | events | spans | common (attributes allowed everywhere)
    name: str  # the metric / event / span ("" for common attributes)
    what: str  # metric | event | span | attribute | enum_member | unit | instrument | type | kind | parent
    attribute: str = ""
    value: str = ""  # the new unit, member, type, kind or parent
    observed: str = ""  # what was seen, for a person deciding

    def to_dict(self) -> dict[str, str]:
        out = {"type": self.type, "what": self.what, "name": self.name}
        for key in ("attribute", "value", "observed"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _shown(values: list[Any], more: bool = False) -> str:
    text = ", ".join(str(v) for v in values[:_MAX_SHOWN])
    return text + (", …" if more or len(values) > _MAX_SHOWN else "")


def _observed(a: AttrShape) -> str:
    return f"{a.merged_type()}: {_shown(a.values, a.more_values)}" if a.values else a.merged_type()


def _new_attribute(key: str, a: AttrShape, stamp: str) -> Attribute:
    t = a.merged_type()
    return Attribute(
        name=key,
        requirement="recommended",
        type=t if t != "any" else "any",
        brief=f"{stamp}: {_shown(a.values, a.more_values)}" if a.values else stamp,
    )


def _accepts(rule: Attribute, value: Any) -> bool:
    if rule.values is not None and value in rule.values:
        return True
    if rule.pattern is not None and isinstance(value, str):
        import re

        return re.fullmatch(rule.pattern, value) is not None
    return False


class _Proposal:
    def __init__(self, spec: ContractSpec, stamp: str) -> None:
        self.spec = copy.deepcopy(spec)
        self.stamp = stamp
        self.changes: list[Change] = []

    def attributes(
        self,
        signal: str,
        name: str,
        rule_attrs: dict[str, Attribute],
        observed: ItemShape,
        skip: tuple[str, ...] = (),
    ) -> None:
        common = self.spec.common_attributes
        for key, a in observed.attributes.items():
            if key in skip:
                continue
            rule = rule_attrs.get(key) or common.get(key)
            where = signal if key in rule_attrs or key not in common else "common"
            if rule is None:
                rule_attrs[key] = _new_attribute(key, a, self.stamp)
                self.changes.append(
                    Change("added", signal, name, "attribute", key, a.merged_type(), _observed(a))
                )
                continue
            allowed = _COMPATIBLE.get(rule.type)
            if allowed is not None and not a.types <= allowed:
                new_type = (
                    a.merged_type() if rule.type != "double" or a.merged_type() != "number" else "number"
                )
                self.changes.append(
                    Change(
                        "updated",
                        where,
                        "" if where == "common" else name,
                        "type",
                        key,
                        new_type,
                        f"contract: {rule.type}; seen: {', '.join(sorted(a.types))}",
                    )
                )
                rule.type = new_type
            if rule.values is not None or rule.pattern is not None:
                new = [v for v in a.values if not _accepts(rule, v)]
                for v in new:
                    rule.values = (*(rule.values or ()), v)
                    self.changes.append(
                        Change(
                            "added",
                            where,
                            "" if where == "common" else name,
                            "enum_member",
                            key,
                            str(v),
                            f"allowed: {_shown(list(rule.values[:-1]))}",
                        )
                    )

    def metric(self, name: str, observed: ItemShape) -> None:
        rule = self.spec.metrics.get(name)
        instrument = next(iter(observed.instruments)) if len(observed.instruments) == 1 else None
        unit = next(iter(observed.units)) if len(observed.units) == 1 else None
        if rule is None:
            rule = MetricRule(
                name=name, instrument=instrument or "counter", unit=unit, description=f"{self.stamp}"
            )
            self.spec.metrics[name] = rule
            self.changes.append(
                Change(
                    "added",
                    "metrics",
                    name,
                    "metric",
                    value=rule.instrument,
                    observed=f"unit {unit!r}, {', '.join(sorted(observed.temporalities))}",
                )
            )
            self.attributes("metrics", name, rule.attributes, observed)
            return
        if (
            instrument is not None
            and instrument != rule.instrument
            and instrument in ("counter", "updowncounter", "gauge", "histogram")
        ):
            self.changes.append(
                Change(
                    "updated",
                    "metrics",
                    name,
                    "instrument",
                    value=instrument,
                    observed=f"contract: {rule.instrument}",
                )
            )
            rule.instrument = instrument
        if rule.unit is not None and unit is not None and unit != rule.unit:
            self.changes.append(
                Change("updated", "metrics", name, "unit", value=unit, observed=f"contract: {rule.unit!r}")
            )
            rule.unit = unit
        self.attributes("metrics", name, rule.attributes, observed)

    def event(self, name: str, observed: ItemShape) -> None:
        rule = self.spec.events.get(name)
        if rule is None:  # the contract may name it with its prefix (claude_code.user_prompt for user_prompt)
            rule = next(
                (r for n, r in self.spec.events.items() if "." in n and n.split(".", 1)[1] == name), None
            )
        if rule is None:
            prefixes = {n.split(".", 1)[0] for n in self.spec.events if "." in n}
            full = f"{next(iter(prefixes))}.{name}" if len(prefixes) == 1 and "." not in name else name
            rule = self.spec.events[full] = EventRule(name=full, description=self.stamp)
            self.changes.append(Change("added", "events", full, "event", observed=f"{observed.count} seen"))
            self.attributes("events", full, rule.attributes, observed, _EVENT_STANDARD)
            return
        self.attributes("events", rule.name, rule.attributes, observed, _EVENT_STANDARD)

    def span(self, name: str, observed: ItemShape) -> None:
        rule = self.spec.spans.get(name)
        kind = next(iter(observed.kinds)) if len(observed.kinds) == 1 else "any"
        parents = sorted(p for p in observed.parents if p != "(root)")
        if rule is None:
            rule = self.spec.spans[name] = SpanRule(
                name=name,
                kind=kind if kind != "unspecified" else "any",
                description=self.stamp,
                parents=tuple(parents) if parents else None,
                root="(root)" in observed.parents,
            )
            self.changes.append(
                Change(
                    "added",
                    "spans",
                    name,
                    "span",
                    value=rule.kind,
                    observed=f"under: {', '.join(sorted(observed.parents)) or '?'}",
                )
            )
            self.attributes("spans", name, rule.attributes, observed)
            return
        if rule.kind != "any" and observed.kinds and observed.kinds != {rule.kind}:
            self.changes.append(
                Change(
                    "updated",
                    "spans",
                    name,
                    "kind",
                    value=kind,
                    observed=f"contract: {rule.kind}; seen: {', '.join(sorted(observed.kinds))}",
                )
            )
            rule.kind = kind
        if rule.parents is not None or rule.root:
            for p in parents:
                if p not in (rule.parents or ()):
                    rule.parents = (*(rule.parents or ()), p)
                    self.changes.append(Change("added", "spans", name, "parent", value=p))
            if "(root)" in observed.parents and not rule.root:
                rule.root = True
                self.changes.append(Change("added", "spans", name, "parent", value="(root)"))
        self.attributes("spans", name, rule.attributes, observed)

    def common(self, shape: TelemetryShape) -> None:
        """A new key carried by most names of every signal seen is an attribute of everything (like
        session.id): propose it once as a common attribute instead of once per metric and event."""
        tables = [t for t in (shape.metrics, shape.events, shape.spans) if t]
        names = [item for t in tables for item in t.values()]
        if len(names) < 3:
            return
        known = set(self.spec.common_attributes)
        candidates: dict[str, AttrShape] = {}
        for item in names:
            for key, a in item.attributes.items():
                if key not in known and key not in _EVENT_STANDARD:
                    candidates.setdefault(key, AttrShape()).types.update(a.types)
                    for v in a.values:
                        candidates[key].add(v)
        for key, merged in candidates.items():
            carriers = [t for t in tables if sum(key in i.attributes for i in t.values()) * 2 > len(t)]
            in_rules = any(
                key in r.attributes
                for rules in (self.spec.metrics, self.spec.events, self.spec.spans)
                for r in rules.values()
            )
            if len(carriers) == len(tables) and not in_rules:
                self.spec.common_attributes[key] = _new_attribute(key, merged, self.stamp)
                self.changes.append(
                    Change("added", "common", "", "attribute", key, merged.merged_type(), _observed(merged))
                )


def propose(
    spec: ContractSpec, shape: TelemetryShape, stamp: str = "learned"
) -> tuple[ContractSpec, list[Change]]:
    """The contract patched with everything `shape` has that `spec` lacks, and the changes made.
    `stamp` goes into the brief of every new entry (e.g. 'observed 2026-12-04 from claude-code 2.1.332')."""
    p = _Proposal(spec, stamp)
    p.common(shape)
    for name, item in sorted(shape.metrics.items()):
        p.metric(name, item)
    for name, item in sorted(shape.events.items()):
        p.event(name, item)
    for name, item in sorted(shape.spans.items()):
        p.span(name, item)
    return p.spec, p.changes


def weaver_changes(spec: ContractSpec, changes: list[Change]) -> dict[str, Any]:
    """The changes in Weaver's schema-changes layout (head, baseline, changes per kind of object)."""
    groups: dict[str, list[dict[str, str]]] = {}
    key = {"metrics": "metrics", "events": "events", "spans": "spans", "common": "registry_attributes"}
    for c in changes:
        groups.setdefault(key[c.signal], []).append(c.to_dict())
    return {
        "baseline": {"contract": spec.name, "version": spec.version},
        "head": {"contract": spec.name, "version": f"{spec.version}+proposed"},
        "changes": groups,
    }


def registry_diff(before: ContractSpec, after: ContractSpec) -> str:
    """A unified diff of the two contracts as Weaver registries ('' when they are the same)."""
    from labctl.contract.weaver import dump_weaver

    a = dump_weaver(before).splitlines(keepends=True)
    b = dump_weaver(after).splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            a, b, f"registry/{before.name}.yaml (contract)", f"registry/{after.name}.yaml (proposed)", n=2
        )
    )
