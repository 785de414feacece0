"""Sum and gauge points against the contract: the proxy's hot path.

A point's serialized bytes after its timestamps and value are exactly its attributes, so a series seen
before (Claude Code re-exports the same series every interval) costs one dict look-up in `SeriesCache`
instead of decoding and checking every attribute. `known_points` reads the points straight from the
request's wire bytes (labctl.otlp.wire); any point it cannot take in its stride, and every point when
no bytes are at hand, goes through `number_points`, which decodes what it must.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from labctl.contract.promname import label_name
from labctl.contract.results import Evaluation, Item, ItemMeta, Violation
from labctl.contract.results import violation as _v
from labctl.contract.rules import TEMPORALITY, CompiledMetric, cardinality, number_checks, seed_fields
from labctl.otlp.values import any_value, attrs_key
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
    MetricWire,
    QuickMetrics,
    data_points,
    skip_field,
    varint,
)

_MAX_CACHED_METRICS = 2_000
_MAX_CACHED_SERIES = 50_000
_MAX_CACHED_TOTAL = 200_000  # all metrics together: bounded memory whatever the clients send
_isfinite = math.isfinite
_new = tuple.__new__  # an Item without Item(...)'s argument handling, once per point
_unpack_double = struct.Struct("<d").unpack_from
_unpack_int = struct.Struct("<q").unpack_from
_unpack_u64 = struct.Struct("<Q").unpack_from
# start (fixed64), time (fixed64) and value, each after its one-byte tag: protobuf's own layout
_unpack_head_double = struct.Struct("<xQxQxd").unpack_from
_unpack_head_int = struct.Struct("<xQxQxq").unpack_from


# What a metric's items share, besides where it sits: (name, kind, unit, temporality name, monotonic,
# temporality code). The first five are ItemMeta's fields in that order.
Description = tuple[str, "str | None", str, str, bool, int]


def describe(m: Any) -> Description:
    """A Metric message's description, read from its protobuf object."""
    kind = m.WhichOneof("data")
    data: Any = getattr(m, kind) if kind else None
    monotonic = bool(kind == "sum" and data.is_monotonic)
    temporality = data.aggregation_temporality if kind in ("sum", "histogram", "exponential_histogram") else 0
    return (m.name, kind, m.unit, TEMPORALITY.get(temporality, "unspecified"), monotonic, temporality)


class WireDescription:
    """A metric description met before, found by its bytes (labctl.otlp.wire's key): its rule. Only
    descriptions that pass every metric-level check are remembered."""

    __slots__ = ("cm", "desc")

    def __init__(self, cm: CompiledMetric | None, desc: Description) -> None:
        self.cm = cm
        self.desc = desc


class Series:
    """What the contract knows of one series of a metric: its attributes and their verdict."""

    __slots__ = ("admitted", "attributes", "checked", "templates")

    def __init__(
        self, attributes: dict[str, Any], templates: list[Violation], admitted: bool, checked: Any
    ) -> None:
        self.attributes = attributes
        self.templates = templates  # attribute violations, paths relative to the point
        self.admitted = admitted  # every cardinality limit already holds this series' values
        self.checked = checked  # the attributes as the rules read them (Prometheus label names for seeds)


class SeriesCache:
    """metric name -> serialized attributes -> Series, bounded per metric and in all."""

    def __init__(self) -> None:
        self._by_metric: dict[str, dict[bytes, Series]] = {}
        self.total = 0

    def for_metric(self, name: str) -> dict[bytes, Series] | None:
        """The metric's cache; None when too many metrics are cached already (points are then checked
        one by one, which is only slower)."""
        if self.total >= _MAX_CACHED_TOTAL:
            for c in self._by_metric.values():
                c.clear()
            self.total = 0
        cache = self._by_metric.get(name)
        if cache is None:
            if len(self._by_metric) >= _MAX_CACHED_METRICS:
                return None
            cache = self._by_metric[name] = {}
        elif len(cache) >= _MAX_CACHED_SERIES:
            self.total -= len(cache)
            cache.clear()  # bounded memory: start over rather than grow
        return cache


def wire_scope(
    series: SeriesCache,
    by_wire: dict[bytes, WireDescription],
    ev: Evaluation,
    raw: bytes,
    wired: list[MetricWire | None],
    metrics: Any,
    resource: dict[str, Any],
    scope: dict[str, Any],
    ri: int,
    si: int,
    slow: Callable[[int, MetricWire | None], None],
    quick: QuickMetrics | None = None,
) -> None:
    """The metrics of one scope from the wire (`wired`: labctl.otlp.wire's layout of that scope).

    The loop runs once per Metric, and a load generator sends one point per Metric: a Gauge/Sum of a
    known description (`by_wire`) holding one point of a known series with an ordinary value is done
    here in a few byte reads and two dict look-ups. A metric of several points, or an unusual point,
    goes to `known_points`; one of an unknown description to `slow(mi, wire)` (the protobuf path).
    A metric taken this way is learnt by `quick` (labctl.otlp.wire.QuickMetrics): when the same metric
    comes again with new times and value, the layout hands over its description and series, and only
    its head is read here."""
    append = ev.items.append
    b = raw
    isfinite = _isfinite
    per: dict[WireDescription, tuple[Any, ...]] = {}  # what a description needs here, once per scope
    points_tag, start_tag, time_tag, double_tag, int_tag = (
        DATA_POINTS_TAG,
        START_TIME_TAG,
        TIME_TAG,
        AS_DOUBLE_TAG,
        AS_INT_TAG,
    )
    attrs_tag, flags_tag = ATTRIBUTES_TAG, FLAGS_TAG
    head, time_at, value_at = POINT_HEAD_SIZE, TIME_TAG_OFFSET, VALUE_TAG_OFFSET
    last: WireDescription | None = None  # the previous metric's description: meta, cache... are its
    cache: Any = None  # its series cache, as unpacked from `per`
    for mi, w in enumerate(wired):
        if w is None or w[2] is None:
            slow(mi, w)
            continue
        known = w[4]
        if known.__class__ is tuple:  # QuickMetrics' entry: (offsets, description key, d, series, key)
            d: WireDescription = known[4]
        else:
            found = by_wire.get(w[2])
            if found is None:
                slow(mi, w)
                continue
            d = found
        if d is not last:  # consecutive metrics of one description (a load generator's): no look-up
            hit = per.get(d)
            if hit is None:
                desc = d.desc
                cm = d.cm
                cache = series.for_metric(desc[0])
                meta = ItemMeta(resource, scope, *desc[:5], ri, si)
                ev.metric_names.add(desc[0])
                simple = cache is not None and not (
                    cm is not None and (cm.required_fields or cm.value_type != "any")
                )
                lo = cm.min if cm is not None else None
                hi = cm.max if cm is not None else None
                hit = per[d] = (meta, cache, simple, lo, hi, cm, desc[4])
            meta, cache, simple, lo, hi, cm, monotonic = hit
            last = d
        pos, end = w[0], w[1]
        if known.__class__ is tuple:
            i = w[3]  # the head, its tags checked by the layout
            skey = known[6]
            entry = known[5]
            if simple and cache.get(skey) is entry:
                if b[i + value_at] == double_tag:
                    start_ns, time_ns, value = _unpack_head_double(b, i)
                    ok = isfinite(value)
                else:
                    start_ns, time_ns, value = _unpack_head_int(b, i)
                    ok = True
                if (
                    ok
                    and not (monotonic and value < 0)
                    and (lo is None or value >= lo)
                    and (hi is None or value <= hi)
                ):
                    append(_new(Item, (meta, 0, None, entry.attributes, value, [], skey, start_ns, time_ns)))
                    continue
        elif simple and b[pos] == points_tag:
            n = b[pos + 1]
            if n < 0x80:
                i = pos + 2
            elif b[pos + 2] < 0x80:
                n = (n & 0x7F) | (b[pos + 2] << 7)
                i = pos + 3
            else:
                n, i = varint(b, pos + 1)
            pe = i + n
            # one point (the layout put every point first: no point after this one's end), protobuf's layout
            if (
                (pe >= end or b[pe] != points_tag)
                and n >= head
                and b[i] == start_tag
                and b[i + time_at] == time_tag
            ):
                tag = b[i + value_at]
                if tag == double_tag:
                    start_ns, time_ns, value = _unpack_head_double(b, i)
                    ok = isfinite(value)
                elif tag == int_tag:
                    start_ns, time_ns, value = _unpack_head_int(b, i)
                    ok = True
                else:
                    ok = False
                i += head
                if (
                    ok
                    and (i == pe or b[i] == attrs_tag or b[i] == flags_tag)
                    and not (monotonic and value < 0)
                    and (lo is None or value >= lo)
                    and (hi is None or value <= hi)
                ):
                    skey = b[i:pe]
                    entry = cache.get(skey)
                    if entry is not None and entry.admitted and not entry.templates:
                        append(
                            _new(Item, (meta, 0, None, entry.attributes, value, [], skey, start_ns, time_ns))
                        )
                        if quick is not None:
                            ms, h = w[3], i - head
                            quick.learn(b, ms, known, h, (h - ms, pos - ms, end - ms, w[2], d, entry, skey))
                        continue
        known_points(series, cache, cm, meta, metrics, mi, [], ev, b, (pos, end))


def point_prefix(meta: ItemMeta, mi: int) -> str:
    """The path of metric `mi`'s points in violations, up to the point's index."""
    return (
        f"resourceMetrics[{meta.resource_index}].scopeMetrics[{meta.scope_index}].metrics[{mi}]"
        f"({meta.name}).{meta.kind}.dataPoints["
    )


def known_points(
    series: SeriesCache,
    cache: dict[bytes, Series] | None,
    cm: CompiledMetric | None,
    meta: ItemMeta,
    metrics: Any,
    mi: int,
    mviol: list[Violation],
    ev: Evaluation,
    raw: bytes,
    region: tuple[int, int],
) -> None:
    """The points of one Gauge/Sum read from the request's bytes (`region`, from
    labctl.otlp.wire). A point laid out as protobuf writes it (start, time, value, attributes), of a
    series seen before that passed every attribute check, with an ordinary value, costs a few byte
    reads, one unpack and one dict look-up. Any other point goes through `number_points`, alone, in
    its place. `metrics[mi]`: the Metric (a ScopeMetrics' protobuf list), read only for such points.
    `cache`: the metric's own (`series.for_metric`)."""
    monotonic = meta.monotonic
    general = (
        cache is None or bool(mviol) or (cm is not None and (cm.required_fields or cm.value_type != "any"))
    )
    lo = cm.min if cm is not None else None
    hi = cm.max if cm is not None else None
    append = ev.items.append
    b = raw
    isfinite = _isfinite
    pos, end = region
    pi = 0
    if general:  # every point takes the general path: find them all, then one call
        spans = [(k, i, e) for k, (i, e) in enumerate(data_points(b, region))]
        pos = end
        number_points(series, cm, meta, mi, _points(metrics, mi, meta), mviol, ev, raw, spans)
        pi = len(spans)
    # The tags as local constants: this loop runs once per point.
    points_tag, temporality_tag, monotonic_tag = (
        DATA_POINTS_TAG,
        AGGREGATION_TEMPORALITY_TAG,
        IS_MONOTONIC_TAG,
    )
    start_tag, time_tag, double_tag, int_tag = START_TIME_TAG, TIME_TAG, AS_DOUBLE_TAG, AS_INT_TAG
    attrs_tag, flags_tag = ATTRIBUTES_TAG, FLAGS_TAG
    head, time_at, value_at = POINT_HEAD_SIZE, TIME_TAG_OFFSET, VALUE_TAG_OFFSET
    while pos < end:  # (nothing left here after the general path)
        if b[pos] != points_tag:  # not a data point (temporality, monotonic, unknown): step over it
            if (b[pos] == temporality_tag or b[pos] == monotonic_tag) and b[pos + 1] < 0x80:
                pos += 2  # the usual one-byte varints
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
        if n >= head and b[i] == start_tag and b[i + time_at] == time_tag:
            tag = b[i + value_at]
            if tag == double_tag:
                start_ns, time_ns, value = _unpack_head_double(b, i)
                ok = isfinite(value)
            elif tag == int_tag:
                start_ns, time_ns, value = _unpack_head_int(b, i)
                ok = True
            else:
                ok = False
            i += head
            if (
                ok
                and (i == pos or b[i] == attrs_tag or b[i] == flags_tag)
                and not (monotonic and value < 0)
                and (lo is None or value >= lo)
                and (hi is None or value <= hi)
            ):
                skey = b[i:pos]
                entry = cache.get(skey)  # type: ignore[union-attr]
                if entry is not None and entry.admitted and not entry.templates:
                    append(_new(Item, (meta, pi, None, entry.attributes, value, [], skey, start_ns, time_ns)))
                    pi += 1
                    continue
        number_points(series, cm, meta, mi, _points(metrics, mi, meta), mviol, ev, raw, [(pi, pos - n, pos)])
        pi += 1
    if pi != 1 and pi != len(_points(metrics, mi, meta)):  # protobuf parsed these bytes: never let it pass
        raise ValueError(f"walked {pi} points of {meta.name} but the request has another count")


def _points(metrics: Any, mi: int, meta: ItemMeta) -> Any:
    return getattr(metrics[mi], meta.kind or "").data_points


def number_points(
    series: SeriesCache,
    cm: CompiledMetric | None,
    meta: ItemMeta,
    mi: int,
    points: Any,
    mviol: list[Violation],
    ev: Evaluation,
    raw: bytes | None = None,
    spans: list[tuple[int, int, int]] | None = None,
) -> None:
    """Sum/gauge points, each checked in full. The bytes are the request's own (`raw`, with `spans`:
    (point index, start, end) of the points to do) or, without them, each point serialized again, so a
    series seen before is still found by its serialized attributes. Anything unusual (exemplars,
    unknown field order) takes the plain decoding path."""
    items = ev.items
    monotonic = meta.monotonic
    key = (meta.resource_index, meta.scope_index, mi)
    prefix = point_prefix(meta, mi)
    cache = series.for_metric(meta.name or "")
    attr_check = cm.attrs if cm is not None else None
    card = cm is not None and bool(cm.cardinality)
    required = cm.required_fields if cm is not None else ()
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
            if t == START_TIME_TAG:
                start_ns = _unpack_u64(b, i + 1)[0]
                i += 9
            elif t == TIME_TAG:
                time_ns = _unpack_u64(b, i + 1)[0]
                i += 9
            elif t == AS_DOUBLE_TAG:
                value = _unpack_double(b, i + 1)[0]
                vk = "as_double"
                i += 9
            elif t == AS_INT_TAG:
                value = _unpack_int(b, i + 1)[0]
                vk = "as_int"
                i += 9
            else:
                break
        entry = None
        skey: Any = None
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
                entry = cache[skey] = Series(attrs, templates, not card, cattrs)
                series.total += 1
            attrs, templates, admitted, cattrs = (
                entry.attributes,
                entry.templates,
                entry.admitted,
                entry.checked,
            )
        else:
            if p is None:
                p = points[pi]
            vk = p.WhichOneof("value")
            value = p.as_double if vk == "as_double" else (p.as_int if vk == "as_int" else None)
            attrs = {kv.key: any_value(kv.value) for kv in p.attributes}
            skey = attrs_key(attrs)
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
            number_checks(cm, value, vk, monotonic, prefix, pi, viol)
        if templates:
            pbase = f"{prefix}{pi}]"
            viol.extend(_v(pbase + t["path"], t["rule"], t["message"]) for t in templates)
        if not admitted:
            before = len(viol)
            cardinality(cm, cattrs, f"{prefix}{pi}]", viol)  # type: ignore[arg-type]
            if len(viol) == before and entry is not None:
                entry.admitted = True  # every value of this series is now known: skip the check next time
        if required:
            assert cm is not None  # required fields come from cm
            seed_fields(cm, value, cattrs, points[pi].time_unix_nano, f"{prefix}{pi}]", viol)
        items.append(_new(Item, (meta, pi, p, attrs, value, viol, skey, start_ns, time_ns)))
        if viol:
            ev.note_rejected(key, pi, viol)
