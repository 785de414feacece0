"""Evaluating OTLP Export*ServiceRequest messages against a compiled contract.

This runs on the proxy's hot path, so the contract is compiled once into per-metric rule tables
(`_CompiledAttrs`, `_CompiledMetric`) and each data point costs one attribute dict plus a few set
look-ups. Records (one dict per point) are only built when someone asks for `Evaluation.records`.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Iterator
from typing import Any

from labctl.contract.model import Attribute, ContractSpec, MetricRule
from labctl.contract.promname import label_name, prometheus_name
from labctl.contract.spans import KIND_NAMES, SpanChecker
from labctl.otlp.values import any_value, iso_time, json_number
from labctl.otlp.wire import (
    AGGREGATION_TEMPORALITY_TAG,
    AS_DOUBLE_TAG,
    AS_INT_TAG,
    ATTRIBUTES_TAG,
    DATA_POINTS_TAG,
    FLAGS_TAG,
    IS_MONOTONIC_TAG,
    POINT_HEAD_SIZE,
    START_TIME_TAG,
    TIME_TAG,
    TIME_TAG_OFFSET,
    VALUE_TAG_OFFSET,
    Regions,
    data_points,
    number_point_regions,
    skip_field,
    varint,
)

Violation = dict[str, str]

_TEMPORALITY = {0: "unspecified", 1: "delta", 2: "cumulative"}
_TEMPORALITY_CODE = {"delta": 1, "cumulative": 2}
_EVENT_STANDARD = ("event.name", "event.timestamp", "event.sequence")
_MAX_CACHED_METRICS = 2_000
_MAX_CACHED_SERIES = 50_000
_MAX_CACHED_TOTAL = 200_000  # all metrics together: bounded memory whatever the clients send
_isfinite = math.isfinite
_unpack_double = struct.Struct("<d").unpack_from
_unpack_int = struct.Struct("<q").unpack_from
_unpack_u64 = struct.Struct("<Q").unpack_from
_unpack_head_double = struct.Struct("<xQxQxd").unpack_from
_unpack_head_int = struct.Struct("<xQxQxq").unpack_from


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    if isinstance(v, str):  # Claude Code sends some numeric event attributes as strings
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool)),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "string[]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}


def _v(path: str, rule: str, message: str) -> Violation:
    return {"path": path, "rule": rule, "message": message}


class _CompiledAttrs:
    """Attribute checks of one metric / event / resource, merged with the contract's common attributes."""

    __slots__ = ("checks", "known", "patterns", "required", "sensitive")

    def __init__(
        self,
        attrs: dict[str, Attribute],
        common: dict[str, Attribute],
        strict_unknown: bool,
        extra_known: tuple[str, ...] = (),
    ) -> None:
        merged = dict(common)
        merged.update(attrs)
        self.required = tuple(k for k, a in merged.items() if a.requirement == "required")
        self.checks: dict[
            str, tuple[frozenset[Any] | None, Callable[[Any], bool] | None, str, float | None, float | None]
        ] = {}
        # a value outside `values` may still match the attribute's pattern (e.g. query_source agent:...)
        self.patterns = {k: re.compile(a.pattern) for k, a in merged.items() if a.pattern is not None}
        for k, a in merged.items():
            values = frozenset(a.values or ()) if a.values is not None or a.pattern is not None else None
            check = _TYPE_CHECKS.get(a.type)
            if values is not None or check is not None or a.min is not None or a.max is not None:
                self.checks[k] = (values, check, a.type, a.min, a.max)
        self.known: frozenset[str] | None = (
            frozenset(merged) | frozenset(extra_known) if strict_unknown else None
        )
        self.sensitive = frozenset(k for k, a in merged.items() if a.sensitive)

    def _shown(self, key: str, value: Any) -> str:
        if key in self.sensitive:
            return "(redacted)"  # never echo prompt text
        shown = repr(value)
        return shown if len(shown) <= 120 else shown[:100] + f"... ({len(shown)} chars)"

    def check(self, attrs: dict[str, Any], base: str, out: list[Violation]) -> None:
        for k in self.required:
            if k not in attrs:
                out.append(
                    _v(
                        f"{base}.attributes[{k}]",
                        "required_attribute",
                        f"required attribute '{k}' is missing",
                    )
                )
        checks = self.checks
        known = self.known
        for k, v in attrs.items():
            c = checks.get(k)
            if c is None:
                if known is not None and k not in known:
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "unknown_attribute",
                            f"attribute '{k}' is not in the contract",
                        )
                    )
                continue
            values, typecheck, tname, lo, hi = c
            if typecheck is not None and not typecheck(v):
                out.append(
                    _v(
                        f"{base}.attributes[{k}]",
                        "attribute_type",
                        f"attribute '{k}' is {self._shown(k, v)}, expected a {tname}",
                    )
                )
                continue
            if values is not None:
                try:
                    ok = v in values
                except TypeError:  # an array/kvlist value is never a member of an enum
                    ok = False
                if not ok and k in self.patterns and isinstance(v, str):
                    ok = self.patterns[k].fullmatch(v) is not None
                if not ok:
                    allowed = ", ".join(sorted(str(x) for x in values))
                    if k in self.patterns:
                        allowed = (
                            allowed + " or " if allowed else ""
                        ) + f"a match of {self.patterns[k].pattern}"
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "attribute_value",
                            f"attribute '{k}' is {self._shown(k, v)}, allowed: {allowed}",
                        )
                    )
                    continue
            if lo is not None or hi is not None:
                try:
                    num = float(v)
                except (TypeError, ValueError):
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "attribute_type",
                            f"attribute '{k}' is {self._shown(k, v)}, expected a number",
                        )
                    )
                    continue
                if not math.isfinite(num) or (lo is not None and num < lo) or (hi is not None and num > hi):
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "attribute_range",
                            f"attribute '{k}' is {self._shown(k, v)}, outside [{lo}, {hi}]",
                        )
                    )


class _CompiledMetric:
    __slots__ = (
        "attrs",
        "cardinality",
        "kind",
        "max",
        "min",
        "monotonic",
        "prom_labels",
        "required_fields",
        "rule",
        "temporality",
        "unit",
        "value_type",
    )

    def __init__(self, rule: MetricRule, spec: ContractSpec) -> None:
        self.rule = rule
        self.kind = rule.kind
        self.monotonic = rule.monotonic
        self.temporality = _TEMPORALITY_CODE.get(rule.temporality, 0)
        self.unit = rule.unit
        self.prom_labels = rule.label_style == "prometheus"
        common = {} if self.prom_labels else spec.common_attributes
        self.attrs = _CompiledAttrs(rule.attributes, common, spec.unknown_attributes == "violation")
        self.min = rule.min
        self.max = rule.max
        self.value_type = rule.value_type
        # attribute -> (limit, distinct values seen); bounded by the limit, so memory stays bounded
        self.cardinality: list[tuple[str, int, set[Any]]] = [
            (k, n, set()) for k, n in rule.cardinality.items()
        ]
        self.required_fields = rule.required_fields


class Contract:
    """A loaded contract: evaluates OTLP requests, keeps the cardinality state of its metrics."""

    def __init__(self, spec: ContractSpec, path: str | None = None) -> None:
        self.spec = spec
        self.path = path
        self.name = spec.name
        self._metrics = {name: _CompiledMetric(rule, spec) for name, rule in spec.metrics.items()}
        self._by_prom: dict[tuple[str, str, str, bool], _CompiledMetric | None] = {}
        # metric name -> serialized attributes -> [attrs, attribute violations, admitted, label attrs]
        self._series: dict[str, dict[bytes, list[Any]]] = {}
        self._series_total = 0
        # Rules named as Prometheus shows them (the seed's format) are found by translating OTLP names.
        self._prom_lookup = any(r.label_style == "prometheus" for r in spec.metrics.values())
        strict = spec.unknown_attributes == "violation"
        self._events = {
            name: _CompiledAttrs(ev.attributes, spec.common_attributes, strict, _EVENT_STANDARD)
            for name, ev in spec.events.items()
        }
        # Claude Code puts the short name in `event.name` (user_prompt) and documents the prefixed one
        # (claude_code.user_prompt): accept both spellings for the same rule.
        for name in list(spec.events):
            if "." in name:
                self._events.setdefault(name.split(".", 1)[1], self._events[name])
        self._spans = SpanChecker(
            spec, lambda rule: _CompiledAttrs(rule.attributes, spec.common_attributes, strict)
        )
        self._resource = _CompiledAttrs(spec.resource, {}, False)
        self._resource_required = bool(spec.resource)
        self.sensitive_attributes = spec.sensitive_attributes()

    # --- lookups ---------------------------------------------------------------------------------

    def metric_rule(
        self, name: str, unit: str = "", kind: str | None = "sum", monotonic: bool = True
    ) -> MetricRule | None:
        """The rule for an OTLP metric (seed contracts match it by its Prometheus name)."""
        c = self._lookup(name, unit, kind, monotonic)
        return c.rule if c is not None else None

    def _lookup(self, name: str, unit: str, kind: str | None, monotonic: bool) -> _CompiledMetric | None:
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
            self._evaluate_metrics(request, ev, number_point_regions(raw) if raw else None, raw)
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
        self, request: Any, ev: Evaluation, regions: Regions | None = None, raw: bytes | None = None
    ) -> None:
        items = ev._items
        unknown_violation = self.spec.unknown_metrics == "violation"
        # Per request, what depends only on a metric's name, unit, kind, monotonic and temporality:
        # its rule and whether it passes the metric-level checks. A request of many one-point metrics
        # of a few names looks each up a few times, not once per metric.
        described: dict[tuple[Any, ...], tuple[_CompiledMetric | None, bool]] = {}
        caches: dict[str, dict[bytes, list[Any]] | None] = {}
        for ri, rm in enumerate(request.resource_metrics):
            resource = {kv.key: any_value(kv.value) for kv in rm.resource.attributes}
            rbase = f"resourceMetrics[{ri}]"
            res_viol = self._resource_violations(resource, rbase)
            for si, sm in enumerate(rm.scope_metrics):
                scope = {"name": sm.scope.name, "version": sm.scope.version}
                for mi, m in enumerate(sm.metrics):
                    kind = m.WhichOneof("data")
                    data: Any = getattr(m, kind) if kind else None
                    monotonic = bool(kind == "sum" and data.is_monotonic)
                    temporality = (
                        data.aggregation_temporality
                        if kind in ("sum", "histogram", "exponential_histogram")
                        else 0
                    )
                    name, unit = m.name, m.unit
                    mbase = f"{rbase}.scopeMetrics[{si}].metrics[{mi}]({name})"
                    desc = (name, unit, kind, monotonic, temporality)
                    known = described.get(desc)
                    if known is None:
                        cm = self._lookup(name, unit, kind, monotonic)
                        level: list[Violation] = []
                        if cm is not None:
                            self._metric_level(cm, m, kind, monotonic, temporality, mbase, level)
                        known = described[desc] = (cm, not level)
                    cm = known[0]
                    mviol: list[Violation] = list(res_viol)
                    if cm is None:
                        if unknown_violation:
                            mviol.append(
                                _v(
                                    mbase + ".name",
                                    "unknown_metric",
                                    f"metric '{name}' is not in the contract",
                                )
                            )
                    elif not known[1]:
                        self._metric_level(cm, m, kind, monotonic, temporality, mbase, mviol)
                    meta = (
                        resource,
                        scope,
                        name,
                        kind,
                        unit,
                        _TEMPORALITY.get(temporality, "unspecified"),
                        monotonic,
                        ri,
                        si,
                        mi,
                    )
                    if data is None:
                        continue
                    pbase_prefix = f"{mbase}.{kind}.dataPoints["
                    if kind in ("sum", "gauge"):
                        region = regions.get((ri, si, mi)) if regions is not None else None
                        if region is not None and raw is not None:  # regions come from raw
                            if name in caches:
                                cache = caches[name]
                            else:
                                cache = caches[name] = self._series_cache(name)
                            self._known_points(
                                cm,
                                name,
                                meta,
                                data.data_points,
                                monotonic,
                                mviol,
                                pbase_prefix,
                                (ri, si, mi),
                                ev,
                                raw,
                                region,
                                cache,
                            )
                        else:
                            self._number_points(
                                cm,
                                name,
                                meta,
                                data.data_points,
                                monotonic,
                                mviol,
                                pbase_prefix,
                                (ri, si, mi),
                                ev,
                            )
                        continue
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
                            self._histogram_checks(p, pbase_prefix, pi, viol)
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
                            pbase = f"{pbase_prefix}{pi}]"
                            cattrs = {label_name(k): v for k, v in attrs.items()} if cm.prom_labels else attrs
                            cm.attrs.check(cattrs, pbase, viol)
                            if cm.cardinality:
                                self._cardinality(cm, cattrs, pbase, viol)
                            if cm.required_fields:
                                self._seed_fields(cm, value, cattrs, p.time_unix_nano, pbase, viol)
                        items.append(
                            (meta, pi, p, attrs, value, viol, None, p.start_time_unix_nano, p.time_unix_nano)
                        )
                        if viol:
                            ev._note_rejected((ri, si, mi), pi, viol)
        ev.total = len(items)

    def _series_cache(self, name: str) -> dict[bytes, list[Any]] | None:
        if self._series_total >= _MAX_CACHED_TOTAL:
            for c in self._series.values():
                c.clear()
            self._series_total = 0
        cache = self._series.get(name)
        if cache is None:
            if len(self._series) >= _MAX_CACHED_METRICS:
                return None
            cache = self._series[name] = {}
        elif len(cache) >= _MAX_CACHED_SERIES:
            self._series_total -= len(cache)
            cache.clear()  # bounded memory: start over rather than grow
        return cache

    def _known_points(
        self,
        cm: _CompiledMetric | None,
        name: str,
        meta: tuple[Any, ...],
        points: Any,
        monotonic: bool,
        mviol: list[Violation],
        prefix: str,
        key: tuple[int, int, int],
        ev: Evaluation,
        raw: bytes,
        region: tuple[int, int],
        cache: dict[bytes, list[Any]] | None,
    ) -> None:
        """The proxy's hot path: the points of one Gauge/Sum read from the request's bytes (`region`,
        from labctl.otlp.wire). A point laid out as protobuf writes it (start, time, value,
        attributes), of a series seen before that passed every attribute check, with an ordinary value,
        costs a few byte reads, one unpack and one dict look-up. Any other point goes through
        `_number_points`, alone, in its place. `cache`: the metric's series cache (_series_cache)."""
        general = (
            cache is None
            or bool(mviol)
            or (cm is not None and (cm.required_fields or cm.value_type != "any"))
        )
        lo = cm.min if cm is not None else None
        hi = cm.max if cm is not None else None
        append = ev._items.append
        b = raw
        isfinite = _isfinite
        pos, end = region
        pi = 0
        if general:  # every point takes the general path: find them all, then one call
            spans = [(k, i, e) for k, (i, e) in enumerate(data_points(b, region))]
            pos = end
            self._number_points(cm, name, meta, points, monotonic, mviol, prefix, key, ev, raw, spans)
            pi = len(spans)
        while pos < end:  # (nothing left here after the general path)
            if b[pos] != DATA_POINTS_TAG:  # not a data point (temporality, monotonic, unknown): step over it
                if (b[pos] == AGGREGATION_TEMPORALITY_TAG or b[pos] == IS_MONOTONIC_TAG) and b[
                    pos + 1
                ] < 0x80:  # the usual one-byte varints
                    pos += 2
                else:
                    pos = skip_field(b, pos)
                continue
            n = b[pos + 1]  # the point's length: one or two varint bytes for any usual point
            if n < 0x80:
                i = pos + 2
            elif b[pos + 2] < 0x80:
                n = (n & 0x7F) | (b[pos + 2] << 7)
                i = pos + 3
            else:
                n, i = varint(b, pos + 1)
            pos = i + n  # this point is b[i:pos]
            if n >= POINT_HEAD_SIZE and b[i] == START_TIME_TAG and b[i + TIME_TAG_OFFSET] == TIME_TAG:
                tag = b[i + VALUE_TAG_OFFSET]
                if tag == AS_DOUBLE_TAG:
                    start_ns, time_ns, value = _unpack_head_double(b, i)
                    ok = isfinite(value)
                elif tag == AS_INT_TAG:
                    start_ns, time_ns, value = _unpack_head_int(b, i)
                    ok = True
                else:
                    ok = False
                i += POINT_HEAD_SIZE
                if (
                    ok
                    and (i == pos or b[i] == ATTRIBUTES_TAG or b[i] == FLAGS_TAG)
                    and not (monotonic and value < 0)
                    and (lo is None or value >= lo)
                    and (hi is None or value <= hi)
                ):
                    skey = b[i:pos]
                    entry = cache.get(skey)  # type: ignore[union-attr]
                    if entry is not None and entry[2] and not entry[1]:  # admitted, no attribute violation
                        append((meta, pi, None, entry[0], value, [], skey, start_ns, time_ns))
                        pi += 1
                        continue
            self._number_points(
                cm, name, meta, points, monotonic, mviol, prefix, key, ev, raw, [(pi, pos - n, pos)]
            )
            pi += 1
        if pi != len(points):  # cannot happen for bytes protobuf parsed; never let it pass unseen
            raise ValueError(f"walked {pi} points of {name} but the request has {len(points)}")

    def _number_points(
        self,
        cm: _CompiledMetric | None,
        name: str,
        meta: tuple[Any, ...],
        points: Any,
        monotonic: bool,
        mviol: list[Violation],
        prefix: str,
        key: tuple[int, int, int],
        ev: Evaluation,
        raw: bytes | None = None,
        spans: list[tuple[int, int, int]] | None = None,
    ) -> None:
        """Sum/gauge points. The fast path: a point's serialized bytes after its timestamps and value
        are exactly its attributes, so a series seen before (Claude Code re-exports the same series every
        interval) costs one dict look-up instead of decoding every attribute. The bytes are the request's
        own (`raw`, with `spans`: (point index, start, end) of the points to do) or, without them, each
        point serialized again. Anything unusual (exemplars, unknown field order) takes the plain
        decoding path."""
        items = ev._items
        cache = self._series_cache(name)
        attr_check = cm.attrs if cm is not None else None
        card = cm is not None and bool(cm.cardinality)
        seed_fields = cm.required_fields if cm is not None else ()
        for pi, i, n in spans if spans is not None else ((k, 0, 0) for k in range(len(points))):
            p = None
            if spans is not None:
                b = raw or b""  # spans come with the request's bytes
                if not (
                    n - i >= POINT_HEAD_SIZE
                    and b[i] == START_TIME_TAG
                    and b[i + TIME_TAG_OFFSET] == TIME_TAG
                    and b[i + VALUE_TAG_OFFSET] in (AS_DOUBLE_TAG, AS_INT_TAG)
                ):
                    # Another encoder's field order: let protobuf lay the point out canonically.
                    p = points[pi]
                    b = p.SerializeToString()
                    i = 0
                    n = len(b)
            else:
                p = points[pi]
                b = p.SerializeToString()
                i = 0
                n = len(b)
            value: Any = None
            vk: str | None = None
            start_ns = time_ns = 0
            # The usual layout (start, time, value, then attributes) in one unpack; the loop handles the rest.
            if n - i >= POINT_HEAD_SIZE and b[i] == START_TIME_TAG and b[i + TIME_TAG_OFFSET] == TIME_TAG:
                if b[i + VALUE_TAG_OFFSET] == AS_DOUBLE_TAG:
                    start_ns, time_ns, value = _unpack_head_double(b, i)
                    vk = "as_double"
                    i += POINT_HEAD_SIZE
                elif b[i + VALUE_TAG_OFFSET] == AS_INT_TAG:
                    start_ns, time_ns, value = _unpack_head_int(b, i)
                    vk = "as_int"
                    i += POINT_HEAD_SIZE
            while i < n:
                t = b[i]
                if t == START_TIME_TAG:  # start_time_unix_nano (fixed64)
                    start_ns = _unpack_u64(b, i + 1)[0]
                    i += 9
                elif t == TIME_TAG:  # time_unix_nano (fixed64)
                    time_ns = _unpack_u64(b, i + 1)[0]
                    i += 9
                elif t == AS_DOUBLE_TAG:  # as_double
                    value = _unpack_double(b, i + 1)[0]
                    vk = "as_double"
                    i += 9
                elif t == AS_INT_TAG:  # as_int (sfixed64)
                    value = _unpack_int(b, i + 1)[0]
                    vk = "as_int"
                    i += 9
                else:
                    break
            entry = None
            skey: bytes | None = None
            if cache is not None and (i >= n or b[i] == ATTRIBUTES_TAG or b[i] == FLAGS_TAG):
                skey = b[i:n]
                entry = cache.get(skey)
                if entry is None:
                    if p is None:
                        p = points[pi]
                    attrs = {kv.key: any_value(kv.value) for kv in p.attributes}
                    templates: list[Violation] = []
                    cattrs = attrs
                    if attr_check is not None:
                        if cm.prom_labels:  # type: ignore[union-attr]
                            cattrs = {label_name(k): v for k, v in attrs.items()}
                        attr_check.check(cattrs, "", templates)
                    entry = [attrs, templates, not card, cattrs]
                    cache[skey] = entry
                    self._series_total += 1
                attrs, templates, admitted, cattrs = entry
            else:
                if p is None:
                    p = points[pi]
                vk = p.WhichOneof("value")
                value = p.as_double if vk == "as_double" else (p.as_int if vk == "as_int" else None)
                attrs = {kv.key: any_value(kv.value) for kv in p.attributes}
                cattrs = attrs
                templates = []
                if attr_check is not None:
                    if cm.prom_labels:  # type: ignore[union-attr]
                        cattrs = {label_name(k): v for k, v in attrs.items()}
                    attr_check.check(cattrs, "", templates)
                admitted = not card
            viol = list(mviol) if mviol else []
            if (
                value is None
                or (vk == "as_double" and not _isfinite(value))
                or (monotonic and value < 0)
                or (
                    cm is not None
                    and (
                        (cm.min is not None and value < cm.min)
                        or (cm.max is not None and value > cm.max)
                        or cm.value_type != "any"
                    )
                )
            ):
                self._number_checks(cm, value, vk, monotonic, prefix, pi, viol)
            if templates:
                pbase = f"{prefix}{pi}]"
                viol.extend(_v(pbase + t["path"], t["rule"], t["message"]) for t in templates)
            if not admitted:
                before = len(viol)
                self._cardinality(cm, cattrs, f"{prefix}{pi}]", viol)  # type: ignore[arg-type]
                if len(viol) == before and entry is not None:
                    entry[2] = True  # every value of this series is now known: skip the check next time
            if seed_fields:
                assert cm is not None  # seed_fields come from cm
                self._seed_fields(cm, value, cattrs, points[pi].time_unix_nano, f"{prefix}{pi}]", viol)
            items.append((meta, pi, p, attrs, value, viol, skey, start_ns, time_ns))
            if viol:
                ev._note_rejected(key, pi, viol)

    @staticmethod
    def _metric_level(
        cm: _CompiledMetric,
        m: Any,
        kind: str | None,
        monotonic: bool,
        temporality: int,
        mbase: str,
        out: list[Violation],
    ) -> None:
        if kind != cm.kind:
            out.append(
                _v(
                    mbase,
                    "instrument",
                    f"'{m.name}' should be a {cm.rule.instrument} (OTLP {cm.kind}), got {kind or 'no data'}",
                )
            )
        elif cm.monotonic is not None and monotonic != cm.monotonic:
            out.append(
                _v(
                    mbase + ".sum.isMonotonic",
                    "monotonic",
                    f"'{m.name}' should be {'monotonic' if cm.monotonic else 'non-monotonic'}",
                )
            )
        if cm.temporality and kind == cm.kind and temporality != cm.temporality:
            out.append(
                _v(
                    mbase + f".{kind}.aggregationTemporality",
                    "temporality",
                    f"'{m.name}' should be {_TEMPORALITY[cm.temporality]}, got "
                    f"{_TEMPORALITY.get(temporality, temporality)}",
                )
            )
        elif kind in ("sum", "histogram") and temporality == 0:
            out.append(
                _v(
                    mbase + f".{kind}.aggregationTemporality",
                    "temporality",
                    f"'{m.name}' has no aggregation temporality (UNSPECIFIED is invalid)",
                )
            )
        if cm.unit is not None and m.unit != cm.unit:
            out.append(_v(mbase + ".unit", "unit", f"'{m.name}' unit should be {cm.unit!r}, got {m.unit!r}"))

    @staticmethod
    def _number_checks(
        cm: _CompiledMetric | None,
        value: Any,
        vk: str | None,
        monotonic: bool,
        prefix: str,
        pi: int,
        out: list[Violation],
    ) -> None:
        if value is None:
            out.append(_v(f"{prefix}{pi}]", "value_missing", "data point has no value (asInt/asDouble)"))
            return
        if vk == "as_double" and not math.isfinite(value):
            out.append(_v(f"{prefix}{pi}].asDouble", "value_not_finite", f"value is {value} (NaN/Inf)"))
            return
        if monotonic and value < 0:
            out.append(
                _v(
                    f"{prefix}{pi}].{'asDouble' if vk == 'as_double' else 'asInt'}",
                    "negative_counter",
                    f"a monotonic counter cannot be negative, got {value}",
                )
            )
        if cm is None:
            return
        if (cm.min is not None and value < cm.min) or (cm.max is not None and value > cm.max):
            out.append(_v(f"{prefix}{pi}]", "value_range", f"value {value} outside [{cm.min}, {cm.max}]"))
        if cm.value_type == "int" and vk != "as_int":
            out.append(_v(f"{prefix}{pi}]", "value_type", "value should be an integer (asInt)"))
        elif cm.value_type == "double" and vk != "as_double":
            out.append(_v(f"{prefix}{pi}]", "value_type", "value should be a double (asDouble)"))

    @staticmethod
    def _histogram_checks(p: Any, prefix: str, pi: int, out: list[Violation]) -> None:
        if p.HasField("sum") and not math.isfinite(p.sum):
            out.append(_v(f"{prefix}{pi}].sum", "value_not_finite", f"histogram sum is {p.sum}"))
        counts = p.bucket_counts
        if counts:
            if len(p.explicit_bounds) != len(counts) - 1:
                out.append(
                    _v(
                        f"{prefix}{pi}].explicitBounds",
                        "histogram_buckets",
                        f"{len(counts)} bucket counts need {len(counts) - 1} bounds, "
                        f"got {len(p.explicit_bounds)}",
                    )
                )
            if sum(counts) != p.count:
                out.append(
                    _v(
                        f"{prefix}{pi}].count",
                        "histogram_buckets",
                        f"count {p.count} != sum of bucket counts {sum(counts)}",
                    )
                )
        bounds = list(p.explicit_bounds)
        if any(not math.isfinite(b) for b in bounds) or bounds != sorted(bounds):
            out.append(
                _v(
                    f"{prefix}{pi}].explicitBounds",
                    "histogram_buckets",
                    "bounds must be finite and increasing",
                )
            )

    @staticmethod
    def _cardinality(cm: _CompiledMetric, attrs: dict[str, Any], base: str, out: list[Violation]) -> None:
        new: list[tuple[set[Any], Any]] = []
        over = False
        for key, limit, seen in cm.cardinality:
            if key == "*":
                try:
                    val: Any = tuple(sorted(attrs.items()))
                    hash(val)
                except TypeError:
                    val = repr(sorted(attrs.items(), key=lambda kv: kv[0]))
            else:
                if key not in attrs:
                    continue
                val = attrs[key]
                if isinstance(val, (list, dict)):
                    val = repr(val)
            if val in seen:
                continue
            if len(seen) >= limit:
                over = True
                what = "attribute sets (series)" if key == "*" else f"values of '{key}'"
                out.append(
                    _v(
                        f"{base}.attributes" + ("" if key == "*" else f"[{key}]"),
                        "cardinality",
                        f"more than {limit} distinct {what} for '{cm.rule.name}'",
                    )
                )
            else:
                new.append((seen, val))
        if not over:  # a refused point takes no room in any limit
            for seen, val in new:
                seen.add(val)

    @staticmethod
    def _seed_fields(
        cm: _CompiledMetric, value: Any, attrs: dict[str, Any], t: int, base: str, out: list[Violation]
    ) -> None:
        for f in cm.required_fields:
            if f == "value" and value is None and not any(v["rule"] == "value_missing" for v in out):
                out.append(_v(base, "required_field", "required field 'value' is missing"))
            elif f == "labels" and not attrs:
                out.append(_v(base + ".attributes", "required_field", "required field 'labels' is empty"))
            elif f == "timestamp" and not t:
                out.append(_v(base + ".timeUnixNano", "required_field", "required field 'timestamp' is 0"))

    def _evaluate_logs(self, request: Any, ev: Evaluation) -> None:
        items = ev._items
        spec = self.spec
        unknown_violation = spec.unknown_events == "violation"
        no_name_violation = spec.logs_without_event_name == "violation"
        for ri, rl in enumerate(request.resource_logs):
            resource = {kv.key: any_value(kv.value) for kv in rl.resource.attributes}
            rbase = f"resourceLogs[{ri}]"
            res_viol = self._resource_violations(resource, rbase)
            for si, sl in enumerate(rl.scope_logs):
                scope = {"name": sl.scope.name, "version": sl.scope.version}
                meta = (resource, scope, None, "log", "", "", False, ri, si, 0)
                for li, lr in enumerate(sl.log_records):
                    attrs = {kv.key: any_value(kv.value) for kv in lr.attributes}
                    name = lr.event_name or attrs.get("event.name")
                    viol = list(res_viol) if res_viol else []
                    base = f"{rbase}.scopeLogs[{si}].logRecords[{li}]"
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
                    items.append((meta, li, lr, attrs, name, viol, None, 0, 0))
                    if viol:
                        ev._note_rejected((ri, si, 0), li, viol)
        ev.total = len(items)

    def _evaluate_traces(self, request: Any, ev: Evaluation) -> None:
        items = ev._items
        for item, droppable in self._spans.evaluate(request, self._resource_violations):
            items.append(item)
            if droppable:  # a late parent finding alone is reported, never dropped: the child is gone
                ev._note_rejected((item[0][7], item[0][8], 0), item[1], item[5])
        ev.total = len(items)


class Evaluation:
    """The verdict on one request: per-point records (built on demand), rejects, filtered request."""

    def __init__(self, signal: str, contract: Contract, request: Any, raw: bytes | None = None) -> None:
        self.signal = signal
        self.contract = contract
        self.request = request
        self.total = 0
        self.rejected = 0
        self._items: list[tuple[Any, ...]] = []
        self._rejected_at: dict[tuple[int, int, int], list[int]] = {}
        self._first: list[Violation] = []
        self._records: list[dict[str, Any]] | None = None
        self._iso: dict[int, str | None] = {}
        self.raw = raw  # the protobuf bytes of `request`, when the caller had them

    def _note_rejected(self, key: tuple[int, int, int], index: int, viol: list[Violation]) -> None:
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
        return [v for item in self._items for v in item[5]]

    @property
    def items(self) -> list[tuple[Any, ...]]:
        """One tuple per point / log record / span, in request order, without building records:
        (meta, index, message or None, attributes, value, violations, series, start_ns, time_ns).
        meta = (resource, scope, name, kind, unit, temporality, monotonic, ri, si, mi) is shared by the
        items of one Metric; `series` identifies the attribute set within its metric (the serialized
        attributes) or is None. For number points `value` is the int or float, for others a dict."""
        return self._items

    def events(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], bool]]:
        """Log records carrying an event name: (event name, attributes, resource, ok)."""
        if self.signal != "logs":
            return
        for meta, _i, _lr, attrs, name, viol, *_ in self._items:
            if name:
                yield str(name), attrs, meta[0], not viol

    def record(self, index: int) -> dict[str, Any]:
        """The record of one item, without building all of them."""
        if self._records is not None:
            return self._records[index]
        return self._record(self._items[index])

    def violating_indices(self) -> list[int]:
        return [i for i, item in enumerate(self._items) if item[5]]

    @property
    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = [self._record(item) for item in self._items]
        return self._records

    def detached_items(self, n: int) -> list[tuple[Any, ...]]:
        """The first n metric items without their protobuf point, for `metric_record` later: what a
        caller keeps then holds its own small values, not the whole request."""
        return [it if it[2] is None else (it[0], it[1], None, *it[3:]) for it in self._items[:n]]

    def _record(self, item: tuple[Any, ...]) -> dict[str, Any]:
        if self.signal == "metrics":
            return metric_record(item, self._iso)
        meta, _index, msg, attrs, value, viol, _skey, _start_ns, _t = item
        resource, scope = meta[0], meta[1]
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
                span_kind=KIND_NAMES.get(msg.kind, str(msg.kind)),
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


def metric_record(item: tuple[Any, ...], iso_cache: dict[int, str | None]) -> dict[str, Any]:
    """The record of one metric item (see `Evaluation.records`); `iso_cache` maps times to ISO strings."""
    meta, _index, _msg, attrs, value, viol, _skey, start_ns, t = item
    resource, scope, name, kind, unit, temporality, monotonic = meta[:7]
    iso = iso_cache.get(t)
    if iso is None:
        iso = iso_cache[t] = iso_time(t)
    return {
        "signal": "metrics",
        "resource": resource,
        "scope": scope,
        "name": name,
        "kind": kind,
        "unit": unit,
        "temporality": temporality,
        "monotonic": monotonic,
        "attributes": attrs,
        "value": (
            value
            if value is None or value.__class__ is int or (value.__class__ is float and value - value == 0)
            else json_number(value)
            if not isinstance(value, dict)
            else {k: json_number(v) if isinstance(v, float) else v for k, v in value.items()}
        ),
        "start_time_unix_nano": start_ns,
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
