"""What evaluating one request gives: typed items (one per point, log record or span) and the verdict.

`Item` and `ItemMeta` are read by name everywhere (the proxy's inspection reads them on its hot path,
which is why they are named tuples: built and read at tuple speed). `Item.series` identifies a metric
point's attribute set within its metric by content, so caches downstream key on it, never on the
identity of an attributes dict.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from labctl.otlp.values import SPAN_KIND_NAMES, any_value, iso_time, json_number

if TYPE_CHECKING:
    from labctl.contract.evaluate import Contract

Violation = dict[str, str]
# A series' identity within its metric, by content: the attributes as serialized on the wire (bytes)
# when the point was read from the request's bytes, else `attrs_key` of its attributes (a tuple).
SeriesId = bytes | tuple[Any, ...] | str


def violation(path: str, rule: str, message: str) -> Violation:
    return {"path": path, "rule": rule, "message": message}


class ItemMeta(NamedTuple):
    """What the items of a scope's metrics with one description share (name, kind, unit, temporality,
    monotonic); for logs and spans, the items of one scope. One object for all of them, so a reader
    can tell where that changes with `is`."""

    resource: dict[str, Any]
    scope: dict[str, Any]
    name: str | None  # the metric's name; None for log records and spans (their names are per item)
    kind: str | None  # gauge, sum, histogram, exponential_histogram, summary, "log" or "span"; None: no data
    unit: str
    temporality: str  # "delta", "cumulative", "unspecified"; "" for logs and spans
    monotonic: bool
    resource_index: int  # where the resource and scope sit in the request
    scope_index: int


class Item(NamedTuple):
    """One data point, log record or span, in request order."""

    meta: ItemMeta
    position: int  # within its Metric's points / its scope's log records or spans
    message: Any  # the protobuf point, log record or span; None when only the wire bytes were read
    attributes: dict[str, Any]
    value: Any  # number points: int or float (None if missing); other points: a dict; logs: event name;
    # spans: span name
    violations: list[Violation]
    series: SeriesId | None  # metric points only
    start_ns: int
    time_ns: int


class Evaluation:
    """The verdict on one request: per-point records (built on demand), rejects, filtered request."""

    def __init__(self, signal: str, contract: Contract, request: Any, raw: bytes | None = None) -> None:
        self.signal = signal
        self.contract = contract
        self.request = request
        self.total = 0
        self.rejected = 0
        self._items: list[Item] = []
        self._rejected_at: dict[tuple[int, int, int], list[int]] = {}
        self._first: list[Violation] = []
        self._records: list[dict[str, Any]] | None = None
        self._iso: dict[int, str | None] = {}
        self.raw = raw  # the protobuf bytes of `request`, when the caller had them
        self.metric_names: set[str] = set()  # every metric's name, points or not
        self._set_later = False  # with_violations() was called

    def note_rejected(self, key: tuple[int, int, int], index: int, viol: list[Violation]) -> None:
        self.rejected += 1
        self._rejected_at.setdefault(key, []).append(index)
        if len(self._first) < 3:
            self._first.append(viol[0])

    @property
    def accepted(self) -> int:
        return self.total - self.rejected

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        unit = {"metrics": "data points", "logs": "log records", "traces": "spans"}[self.signal]
        examples = "; ".join(f"{v['path']}: {v['message']}" for v in self._first)
        return f"{self.rejected} of {self.total} {unit} violate contract '{self.contract.name}': {examples}"

    def violations(self) -> list[Violation]:
        return [v for item in self._items for v in item.violations]

    @property
    def items(self) -> list[Item]:
        """One `Item` per point / log record / span, in request order, without building records."""
        return self._items

    def events(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], bool]]:
        """Log records carrying an event name: (event name, attributes, resource, ok)."""
        if self.signal != "logs":
            return
        for it in self._items:
            if it.value:
                yield str(it.value), it.attributes, it.meta.resource, not it.violations

    def record(self, index: int) -> dict[str, Any]:
        """The record of one item, without building all of them."""
        if self._records is not None:
            return self._records[index]
        return self._record(self._items[index])

    def violating_indices(self) -> list[int]:
        # A metric point with violations is always rejected (note_rejected), unless its violations were
        # set afterwards (with_violations): with none rejected the points need no walk. Not so for spans,
        # where a late parent finding is reported but not rejected.
        if self.signal == "metrics" and not self.rejected and not self._set_later:
            return []
        return [i for i, item in enumerate(self._items) if item.violations]

    @property
    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = [self._record(item) for item in self._items]
        return self._records

    def detached_items(self, n: int) -> list[Item]:
        """The first n metric items without their protobuf point, for `metric_record` later: what a
        caller keeps then holds its own small values, not the whole request."""
        return [it if it.message is None else it._replace(message=None) for it in self._items[:n]]

    def with_violations(self, violations: dict[int, list[Violation]]) -> None:
        """Replace the violations of the given items (a verdict reached elsewhere, e.g. in the proxy)."""
        items = self._items
        self._set_later = True
        for i, viol in violations.items():
            items[i] = items[i]._replace(violations=viol)

    def _record(self, item: Item) -> dict[str, Any]:
        if self.signal == "metrics":
            return metric_record(item, self._iso)
        msg, attrs, value, viol = item.message, item.attributes, item.value, item.violations
        resource, scope = item.meta.resource, item.meta.scope
        rec: dict[str, Any] = {"signal": self.signal, "resource": resource, "scope": scope}
        if self.signal == "logs":
            body = any_value(msg.body) if msg.HasField("body") else None
            rec.update(
                name=value,
                kind="event" if value else "log",
                attributes=attrs,
                value=None,
                body=body,
                severity=msg.severity_text or None,
                time_unix_nano=msg.time_unix_nano or msg.observed_time_unix_nano,
                time=iso_time(msg.time_unix_nano or msg.observed_time_unix_nano),
            )
        else:
            dur = (msg.end_time_unix_nano - msg.start_time_unix_nano) / 1e6
            rec.update(
                name=value,
                kind="span",
                attributes=attrs,
                value=dur,
                unit="ms",
                trace_id=msg.trace_id.hex(),
                span_id=msg.span_id.hex(),
                parent_span_id=msg.parent_span_id.hex(),
                span_kind=SPAN_KIND_NAMES.get(msg.kind, str(msg.kind)),
                time_unix_nano=msg.start_time_unix_nano,
                time=iso_time(msg.start_time_unix_nano),
            )
        rec["verdict"] = "violation" if viol else "ok"
        rec["violations"] = viol
        return rec

    def filtered_request(self) -> Any:
        """The request without its violating points/records (enforce mode); the same object if none."""
        if not self.rejected:
            return self.request
        out = type(self.request)()
        out.CopyFrom(self.request)
        if self.signal == "metrics":
            top = out.resource_metrics
            for (ri, si, mi), idxs in self._rejected_at.items():
                m = top[ri].scope_metrics[si].metrics[mi]
                points = getattr(m, m.WhichOneof("data")).data_points
                for i in sorted(idxs, reverse=True):
                    del points[i]
            for rm in top:
                for sm in rm.scope_metrics:
                    for mi in range(len(sm.metrics) - 1, -1, -1):
                        m = sm.metrics[mi]
                        kind = m.WhichOneof("data")
                        if kind is None or not len(getattr(m, kind).data_points):
                            del sm.metrics[mi]
            _prune(top, "scope_metrics", "metrics")
        elif self.signal == "logs":
            top = out.resource_logs
            for (ri, si, _), idxs in self._rejected_at.items():
                records = top[ri].scope_logs[si].log_records
                for i in sorted(idxs, reverse=True):
                    del records[i]
            _prune(top, "scope_logs", "log_records")
        elif self.signal == "traces":
            top = out.resource_spans
            for (ri, si, _), idxs in self._rejected_at.items():
                spans = top[ri].scope_spans[si].spans
                for i in sorted(idxs, reverse=True):
                    del spans[i]
            _prune(top, "scope_spans", "spans")
        return out


def metric_record(item: Item, iso_cache: dict[int, str | None]) -> dict[str, Any]:
    """The record of one metric item (see `Evaluation.records`); `iso_cache` maps times to ISO strings."""
    meta, value, viol, t = item.meta, item.value, item.violations, item.time_ns
    iso = iso_cache.get(t)
    if iso is None:
        iso = iso_cache[t] = iso_time(t)
    return {
        "signal": "metrics",
        "resource": meta.resource,
        "scope": meta.scope,
        "name": meta.name,
        "kind": meta.kind,
        "unit": meta.unit,
        "temporality": meta.temporality,
        "monotonic": meta.monotonic,
        "attributes": item.attributes,
        "value": (
            value
            if value is None or value.__class__ is int or (value.__class__ is float and value - value == 0)
            else json_number(value)
            if not isinstance(value, dict)
            else {k: json_number(v) if isinstance(v, float) else v for k, v in value.items()}
        ),
        "start_time_unix_nano": item.start_ns,
        "time_unix_nano": t,
        "time": iso,
        "verdict": "violation" if viol else "ok",
        "violations": viol,
    }


def _prune(top: Any, scope_field: str, item_field: str) -> None:
    for ri in range(len(top) - 1, -1, -1):
        scopes = getattr(top[ri], scope_field)
        for si in range(len(scopes) - 1, -1, -1):
            if not len(getattr(scopes[si], item_field)):
                del scopes[si]
        if not len(scopes):
            del top[ri]
