"""The shape of telemetry as it was sent: names, instruments, units, temporalities, attribute keys with
their value types and a few values, span kinds and parents — without the data itself.

Two uses: the proxy's learning mode records the shape of what clients send, so `labctl contract
propose` can tell what the contract lacks (labctl.contract.drift); and the emulator's conformance test
compares the shape of the real client's telemetry with the emulator's.

    shape = TelemetryShape()
    shape.observe(evaluation)        # an Evaluation from Contract.evaluate (any signal)
    shape.to_dict() / TelemetryShape.from_dict(d)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from labctl.contract.results import Item
from labctl.contract.spans import KIND_NAMES
from labctl.otlp.values import attrs_key

MAX_VALUES = 12  # distinct values kept per attribute: enough to propose an enum member, bounded memory
MAX_NAMES = 500  # distinct metric / event / span names kept per signal
MAX_KEYS = 200  # distinct attribute keys kept per name
_MAX_SERIES_SEEN = 50_000
_MAX_SPAN_IDS = 20_000
_INSTRUMENTS = {
    ("sum", True): "counter",
    ("sum", False): "updowncounter",
    ("gauge", False): "gauge",
    ("histogram", False): "histogram",
    ("exponential_histogram", False): "histogram",
    ("summary", False): "summary",
}


def value_type(v: Any) -> str:
    """The contract's attribute type of one value; numbers sent as strings (Claude Code does) are 'number'."""
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, list):
        return "string[]" if all(isinstance(x, str) for x in v) else "any"
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return "string"
        return (
            "number"
            if v.strip() and v.strip().lower() not in ("nan", "inf", "-inf", "infinity")
            else "string"
        )
    return "any"


@dataclass
class AttrShape:
    types: set[str] = field(default_factory=set)
    values: list[Any] = field(default_factory=list)  # the first MAX_VALUES distinct scalar values
    more_values: bool = False  # more distinct values were seen than are kept

    def add(self, v: Any) -> None:
        self.types.add(value_type(v))
        if isinstance(v, (list, dict)):
            return
        if v not in self.values:
            if len(self.values) < MAX_VALUES:
                self.values.append(v)
            else:
                self.more_values = True

    def merged_type(self) -> str:
        """One contract type for every value seen (int and double together are a double)."""
        t = self.types
        if len(t) == 1:
            return next(iter(t))
        if t <= {"int", "double"}:
            return "double"
        if t <= {"int", "double", "number"}:
            return "number"
        return "any"

    def to_dict(self) -> dict[str, Any]:
        return {"types": sorted(self.types), "values": list(self.values), "more_values": self.more_values}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttrShape:
        return cls(set(d.get("types") or ()), list(d.get("values") or ()), bool(d.get("more_values")))


@dataclass
class ItemShape:
    """One metric, event or span name: how it was sent and which attributes it carried."""

    count: int = 0
    instruments: set[str] = field(default_factory=set)  # metrics
    units: set[str] = field(default_factory=set)  # metrics
    temporalities: set[str] = field(default_factory=set)  # metrics (delta / cumulative)
    kinds: set[str] = field(default_factory=set)  # spans
    parents: set[str] = field(default_factory=set)  # spans: parent span names, "(root)" for none
    attributes: dict[str, AttrShape] = field(default_factory=dict)

    def add_attrs(self, attrs: dict[str, Any]) -> None:
        mine = self.attributes
        for k, v in attrs.items():
            a = mine.get(k)
            if a is None:
                if len(mine) >= MAX_KEYS:
                    continue
                a = mine[k] = AttrShape()
            a.add(v)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count}
        for key in ("instruments", "units", "temporalities", "kinds", "parents"):
            values = getattr(self, key)
            if values:
                out[key] = sorted(values)
        out["attributes"] = {k: a.to_dict() for k, a in self.attributes.items()}  # in the order first seen
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ItemShape:
        item = cls(count=int(d.get("count", 0)))
        for key in ("instruments", "units", "temporalities", "kinds", "parents"):
            setattr(item, key, set(d.get(key) or ()))
        item.attributes = {k: AttrShape.from_dict(a) for k, a in (d.get("attributes") or {}).items()}
        return item


class TelemetryShape:
    """The accumulated shape of metrics, events and spans (bounded, whatever the clients send)."""

    SIGNALS = ("metrics", "events", "spans")

    def __init__(self) -> None:
        self.metrics: dict[str, ItemShape] = {}
        self.events: dict[str, ItemShape] = {}
        self.spans: dict[str, ItemShape] = {}
        self.resource: ItemShape = ItemShape()
        self.scopes: set[tuple[str, str, str]] = set()  # (signal, scope name, scope version)
        self._series_seen: set[tuple[str, Any]] = set()
        self._span_names: OrderedDict[bytes, str] = OrderedDict()
        self._pending_parents: OrderedDict[bytes, list[str]] = OrderedDict()  # parent id -> child names

    @staticmethod
    def _item(table: dict[str, ItemShape], name: str) -> ItemShape | None:
        item = table.get(name)
        if item is None and len(table) < MAX_NAMES:
            item = table[name] = ItemShape()
        return item

    def observe(self, ev: Any) -> None:
        """Add what one evaluated request carried (see `Evaluation.items`)."""
        signal = ev.signal
        last_resource: Any = None
        for it in ev.items:
            meta = it.meta
            if meta.resource is not last_resource:
                last_resource = meta.resource
                self.resource.add_attrs(meta.resource)
                self.resource.count += 1
                scope = meta.scope
                self.scopes.add((signal, str(scope.get("name", "")), str(scope.get("version", ""))))
            if signal == "metrics":
                self._metric(it)
            elif signal == "logs":
                if it.value:
                    item = self._item(self.events, str(it.value))
                    if item is not None:
                        item.count += 1
                        item.add_attrs(it.attributes)
            else:
                self._span(it)

    def _metric(self, it: Item) -> None:
        meta, attrs = it.meta, it.attributes
        name, kind, unit, temporality, monotonic = (
            meta.name or "",
            meta.kind,
            meta.unit,
            meta.temporality,
            meta.monotonic,
        )
        key = (name, it.series if it.series is not None else attrs_key(attrs))
        if key in self._series_seen:  # a known series adds nothing to the shape: skip it cheaply
            return
        if len(self._series_seen) < _MAX_SERIES_SEEN:
            self._series_seen.add(key)
        item = self._item(self.metrics, name)
        if item is None:
            return
        item.count += 1
        item.instruments.add(_INSTRUMENTS.get((str(kind), bool(monotonic)), str(kind)))
        item.units.add(unit)
        if temporality and temporality != "unspecified":
            item.temporalities.add(temporality)
        item.add_attrs(attrs)

    def _span(self, it: Item) -> None:
        span, attrs, name = it.message, it.attributes, str(it.value)
        item = self._item(self.spans, name)
        if item is None:
            return
        item.count += 1
        item.add_attrs(attrs)
        if span is None:
            return
        item.kinds.add(KIND_NAMES.get(span.kind, str(span.kind)))
        sid, pid = bytes(span.span_id), bytes(span.parent_span_id)
        if sid:
            self._span_names[sid] = name
            if len(self._span_names) > _MAX_SPAN_IDS:
                self._span_names.popitem(last=False)
            for child in self._pending_parents.pop(sid, ()):
                child_item = self.spans.get(child)
                if child_item is not None:
                    child_item.parents.add(name)
        if not pid:
            item.parents.add("(root)")
        elif pid in self._span_names:
            item.parents.add(self._span_names[pid])
        else:  # children end (and are exported) before their parent: resolve when it comes
            self._pending_parents.setdefault(pid, []).append(name)
            if len(self._pending_parents) > _MAX_SPAN_IDS:
                self._pending_parents.popitem(last=False)

    def table(self, signal: str) -> dict[str, ItemShape]:
        return {"metrics": self.metrics, "events": self.events, "spans": self.spans}[signal]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: v.to_dict() for k, v in sorted(self.metrics.items())},
            "events": {k: v.to_dict() for k, v in sorted(self.events.items())},
            "spans": {k: v.to_dict() for k, v in sorted(self.spans.items())},
            "resource": self.resource.to_dict()["attributes"],
            "scopes": [list(s) for s in sorted(self.scopes)],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TelemetryShape:
        shape = cls()
        for signal in cls.SIGNALS:
            shape.table(signal).update({k: ItemShape.from_dict(v) for k, v in (d.get(signal) or {}).items()})
        shape.resource.attributes = {k: AttrShape.from_dict(a) for k, a in (d.get("resource") or {}).items()}
        shape.scopes = {(str(a), str(b), str(c)) for a, b, c in d.get("scopes") or ()}
        return shape
