"""Evaluating OTLP Export*ServiceRequest messages against a compiled contract: the rules only.

The contract is compiled once (labctl.contract.rules); this module walks a request's resources, scopes
and metrics / log records / spans and applies the rules. Sum and gauge points, the hot path, are in
labctl.contract.numbers; spans in labctl.contract.spans; what comes out (typed items, the verdict, the
filtered request) in labctl.contract.results. Records (one dict per point) are only built when someone
asks for `Evaluation.records`.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from labctl.contract.model import ContractSpec, MetricRule
from labctl.contract.numbers import (
    Description,
    Series,
    SeriesCache,
    WireDescription,
    describe,
    known_points,
    number_points,
    point_prefix,
    wire_scope,
)
from labctl.contract.promname import label_name, prometheus_name
from labctl.contract.results import Evaluation, Item, ItemMeta, Violation
from labctl.contract.results import violation as _v
from labctl.contract.rules import (
    CompiledAttrs,
    CompiledMetric,
    cardinality,
    histogram_checks,
    metric_level,
    seed_fields,
)
from labctl.contract.spans import SpanChecker
from labctl.otlp.values import any_value, attrs_key
from labctl.otlp.wire import Layout, MetricWire, QuickMetrics, metric_layout

__all__ = ["Contract", "Evaluation", "Item", "ItemMeta"]

_EVENT_STANDARD = ("event.name", "event.timestamp", "event.sequence")
_MAX_WIRE_DESCRIPTIONS = 10_000  # distinct metric descriptions remembered by their wire bytes


class _Run:
    """What one request's metrics share while they are evaluated."""

    __slots__ = ("caches", "described", "ev", "metas", "raw")

    def __init__(self, ev: Evaluation, raw: bytes | None) -> None:
        self.ev = ev
        self.raw = raw
        # description -> (rule, passes the metric-level checks): looked up once per description
        self.described: dict[Description, tuple[CompiledMetric | None, bool]] = {}
        # (resource index, scope index, description) -> the ItemMeta its metrics' items share
        self.metas: dict[tuple[int, int, Description], ItemMeta] = {}
        self.caches: dict[str, dict[bytes, Series] | None] = {}

    def cache(self, series: SeriesCache, name: str) -> dict[bytes, Series] | None:
        caches = self.caches
        if name in caches:
            return caches[name]
        c = caches[name] = series.for_metric(name)
        return c


class Contract:
    """A loaded contract: evaluates OTLP requests, keeps the cardinality state of its metrics."""

    def __init__(self, spec: ContractSpec, path: str | None = None) -> None:
        self.spec = spec
        self.path = path
        self.name = spec.name
        self._metrics = {name: CompiledMetric(rule, spec) for name, rule in spec.metrics.items()}
        self._by_prom: dict[tuple[str, str, str, bool], CompiledMetric | None] = {}
        # metric name -> serialized attributes -> [attrs, attribute violations, admitted, label attrs]
        self._series = SeriesCache()
        self._by_wire: dict[bytes, WireDescription] = {}  # see labctl.otlp.wire's metric key
        self._quick = QuickMetrics()  # one-point metrics met before, whole (see labctl.otlp.wire)
        # Rules named as Prometheus shows them (the seed's format) are found by translating OTLP names.
        self._prom_lookup = any(r.label_style == "prometheus" for r in spec.metrics.values())
        strict = spec.unknown_attributes == "violation"
        self._events = {
            name: CompiledAttrs(ev.attributes, spec.common_attributes, strict, _EVENT_STANDARD)
            for name, ev in spec.events.items()
        }
        # Claude Code puts the short name in `event.name` (user_prompt) and documents the prefixed one
        # (claude_code.user_prompt): accept both spellings for the same rule.
        for name in list(spec.events):
            if "." in name:
                self._events.setdefault(name.split(".", 1)[1], self._events[name])
        self._spans = SpanChecker(
            spec, lambda rule: CompiledAttrs(rule.attributes, spec.common_attributes, strict)
        )
        self._resource = CompiledAttrs(spec.resource, {}, False)
        self._resource_required = bool(spec.resource)
        self.sensitive_attributes = spec.sensitive_attributes()

    # --- lookups ---------------------------------------------------------------------------------

    def metric_rule(
        self, name: str, unit: str = "", kind: str | None = "sum", monotonic: bool = True
    ) -> MetricRule | None:
        """The rule for an OTLP metric (seed contracts match it by its Prometheus name)."""
        c = self._lookup(name, unit, kind, monotonic)
        return c.rule if c is not None else None

    def _lookup(self, name: str, unit: str, kind: str | None, monotonic: bool) -> CompiledMetric | None:
        c = self._metrics.get(name)
        if c is not None or not self._prom_lookup:
            return c
        key = (name, unit, kind or "", monotonic)
        if key in self._by_prom:
            return self._by_prom[key]
        # Seed contracts name metrics as Prometheus shows them, possibly with an exporter namespace.
        prom = prometheus_name(name, unit, monotonic_sum=(kind == "sum" and monotonic))
        found = None
        for cm in self._metrics.values():
            if cm.rule.name == prom or cm.rule.name.endswith("_" + prom):
                found = cm
                break
        if len(self._by_prom) < 10_000:
            self._by_prom[key] = found
        return found

    # --- evaluation ------------------------------------------------------------------------------

    def evaluate(self, signal: str, request: Any, raw: bytes | None = None) -> Evaluation:
        """`raw`: the protobuf bytes `request` was parsed from, when at hand (a faster walk of the points)."""
        ev = Evaluation(signal, self, request, raw)
        if signal == "metrics":
            self._evaluate_metrics(request, ev, metric_layout(raw, self._quick) if raw else None, raw)
        elif signal == "logs":
            self._evaluate_logs(request, ev)
        elif signal == "traces":
            self._evaluate_traces(request, ev)
        else:
            raise ValueError(f"unknown signal {signal!r}")
        return ev

    def _resource_violations(self, resource: dict[str, Any], base: str) -> list[Violation]:
        out: list[Violation] = []
        if self._resource_required:
            self._resource.check(resource, base + ".resource", out)
            for v in out:
                v["rule"] = "resource_" + v["rule"]
        return out

    def _evaluate_metrics(
        self, request: Any, ev: Evaluation, layout: Layout | None, raw: bytes | None
    ) -> None:
        """Every metric of the request. With the request's bytes (`layout`, from labctl.otlp.wire), a
        Gauge/Sum whose description (everything but its points) was seen before and passed the metric
        checks is taken from the wire alone: no protobuf object, one dict look-up for its description.
        Every other metric goes through `_metric`, which reads the protobuf objects."""
        run = _Run(ev, raw)
        by_wire = self._by_wire
        for ri, rm in enumerate(request.resource_metrics):
            resource = {kv.key: any_value(kv.value) for kv in rm.resource.attributes}
            res_viol = self._resource_violations(resource, f"resourceMetrics[{ri}]")
            for si, sm in enumerate(rm.scope_metrics):
                scope = {"name": sm.scope.name, "version": sm.scope.version}
                metrics = sm.metrics
                wired = layout.get((ri, si)) if layout is not None else None
                if wired is None or raw is None or res_viol or len(wired) != len(metrics):
                    for mi in range(len(metrics)):
                        w = wired[mi] if wired is not None and len(wired) == len(metrics) else None
                        self._metric(run, metrics, ri, si, resource, scope, res_viol, mi, w)
                    continue
                wire_scope(
                    self._series,
                    by_wire,
                    ev,
                    raw,
                    wired,
                    metrics,
                    resource,
                    scope,
                    ri,
                    si,
                    # the protobuf path, which also learns the metric's description
                    partial(self._metric, run, metrics, ri, si, resource, scope, res_viol),
                    self._quick,
                )
        ev.total = len(ev.items)

    def _metric(
        self,
        run: _Run,
        metrics: Any,
        ri: int,
        si: int,
        resource: dict[str, Any],
        scope: dict[str, Any],
        res_viol: list[Violation],
        mi: int,
        wire: MetricWire | None,
    ) -> None:
        """One metric read through its protobuf objects; its description is remembered for the wire
        path (`_by_wire`) when it passes every metric-level check."""
        ev = run.ev
        m = metrics[mi]
        desc = describe(m)
        name, kind, unit, _, monotonic, temporality = desc
        data: Any = getattr(m, kind) if kind else None
        mbase = f"resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}]({name})"
        known = run.described.get(desc)
        if known is None:
            cm = self._lookup(name, unit, kind, monotonic)
            level: list[Violation] = []
            if cm is not None:
                metric_level(cm, m, kind, monotonic, temporality, mbase, level)
            known = run.described[desc] = (cm, not level)
        cm = known[0]
        mviol: list[Violation] = list(res_viol)
        if cm is None:
            if self.spec.unknown_metrics == "violation":
                mviol.append(_v(mbase + ".name", "unknown_metric", f"metric '{name}' is not in the contract"))
        elif not known[1]:
            metric_level(cm, m, kind, monotonic, temporality, mbase, mviol)
        meta = run.metas.get((ri, si, desc))
        if meta is None:
            meta = run.metas[(ri, si, desc)] = ItemMeta(resource, scope, *desc[:5], ri, si)
            ev.metric_names.add(name)
        if data is None:
            return
        if kind == "sum" or kind == "gauge":
            raw = run.raw
            if wire is not None and raw is not None:  # the layout comes from raw
                if not mviol and wire[2] is not None and len(self._by_wire) < _MAX_WIRE_DESCRIPTIONS:
                    self._by_wire[wire[2]] = WireDescription(cm, desc)
                cache = run.cache(self._series, name)
                known_points(self._series, cache, cm, meta, metrics, mi, mviol, ev, raw, (wire[0], wire[1]))
            else:
                number_points(self._series, cm, meta, mi, data.data_points, mviol, ev)
            return
        prefix = point_prefix(meta, mi)
        for pi, p in enumerate(data.data_points):
            attrs = {kv.key: any_value(kv.value) for kv in p.attributes}
            viol = list(mviol) if mviol else []
            if kind == "histogram":
                value: Any = {
                    "count": p.count,
                    "sum": p.sum if p.HasField("sum") else None,
                    "bucket_counts": list(p.bucket_counts),
                    "explicit_bounds": list(p.explicit_bounds),
                }
                histogram_checks(p, prefix, pi, viol)
            elif kind == "exponential_histogram":
                value = {
                    "count": p.count,
                    "sum": p.sum if p.HasField("sum") else None,
                    "scale": p.scale,
                    "zero_count": p.zero_count,
                }
            else:  # summary
                value = {
                    "count": p.count,
                    "sum": p.sum,
                    "quantiles": [[q.quantile, q.value] for q in p.quantile_values],
                }
            if cm is not None:
                pbase = f"{prefix}{pi}]"
                cattrs = {label_name(k): v for k, v in attrs.items()} if cm.prom_labels else attrs
                cm.attrs.check(cattrs, pbase, viol)
                if cm.cardinality:
                    cardinality(cm, cattrs, pbase, viol)
                if cm.required_fields:
                    seed_fields(cm, value, cattrs, p.time_unix_nano, pbase, viol)
            ev.items.append(
                Item(
                    meta,
                    pi,
                    p,
                    attrs,
                    value,
                    viol,
                    attrs_key(attrs),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                )
            )
            if viol:
                ev.note_rejected((ri, si, mi), pi, viol)

    def _evaluate_logs(self, request: Any, ev: Evaluation) -> None:
        items = ev.items
        spec = self.spec
        unknown_violation = spec.unknown_events == "violation"
        no_name_violation = spec.logs_without_event_name == "violation"
        now_ns = time.time_ns()
        for ri, rl in enumerate(request.resource_logs):
            resource = {kv.key: any_value(kv.value) for kv in rl.resource.attributes}
            rbase = f"resourceLogs[{ri}]"
            res_viol = self._resource_violations(resource, rbase)
            for si, sl in enumerate(rl.scope_logs):
                scope = {"name": sl.scope.name, "version": sl.scope.version}
                meta = ItemMeta(resource, scope, None, "log", "", "", False, ri, si)
                for li, lr in enumerate(sl.log_records):
                    attrs = {kv.key: any_value(kv.value) for kv in lr.attributes}
                    name = lr.event_name or attrs.get("event.name")
                    viol = list(res_viol) if res_viol else []
                    base = f"{rbase}.scopeLogs[{si}].logRecords[{li}]"
                    if lr.trace_id or lr.span_id or lr.time_unix_nano:
                        _record_shape(lr, base, now_ns, viol)
                    if not name:
                        if no_name_violation:
                            viol.append(
                                _v(base, "missing_event_name", "log record has no event.name (not an event)")
                            )
                    else:
                        rule = self._events.get(str(name))
                        if rule is None:
                            if unknown_violation:
                                viol.append(
                                    _v(
                                        base + ".attributes[event.name]",
                                        "unknown_event",
                                        f"event '{name}' is not in the contract",
                                    )
                                )
                        else:
                            rule.check(attrs, base, viol)
                    items.append(Item(meta, li, lr, attrs, name, viol, None, 0, 0))
                    if viol:
                        ev.note_rejected((ri, si, 0), li, viol)
        ev.total = len(items)

    def _evaluate_traces(self, request: Any, ev: Evaluation) -> None:
        items = ev.items
        for item, droppable in self._spans.evaluate(request, self._resource_violations):
            items.append(item)
            if droppable:  # a late parent finding alone is reported, never dropped: the child is gone
                ev.note_rejected(
                    (item.meta.resource_index, item.meta.scope_index, 0), item.position, item.violations
                )
        ev.total = len(items)


# An event's time the event store keeps: VictoriaLogs drops, without an error to the Collector, rows newer
# than its -futureRetention (2 days by default) and older than its -retentionPeriod (7 days in lab.yaml).
_AHEAD_NS = 2 * 86400 * 10**9
_BEHIND_NS = 7 * 86400 * 10**9


def _record_shape(lr: Any, base: str, now_ns: int, out: list[Violation]) -> None:
    """What OTLP and the stores downstream need of any log record, whatever the contract says of events:
    ids of the right length (the Collector refuses a whole request over one) and a time the event store
    keeps (a record outside it vanishes there)."""
    for field, size in (("trace_id", 16), ("span_id", 8)):
        n = len(getattr(lr, field))
        if n not in (0, size):
            out.append(
                _v(
                    f"{base}.{field}",
                    "malformed_id",
                    f"{field} is {n} bytes ({size}, or none): the Collector refuses the whole request "
                    "carrying it",
                )
            )
    t = lr.time_unix_nano
    if t and not now_ns - _BEHIND_NS <= t <= now_ns + _AHEAD_NS:
        days = (t - now_ns) / 86400e9
        when = f"{days:.0f} days ahead of" if days > 0 else f"{-days:.0f} days behind"
        out.append(
            _v(
                f"{base}.timeUnixNano",
                "timestamp_range",
                f"the record's time is {when} the proxy's clock: the event store drops it without an error",
            )
        )
