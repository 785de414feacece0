"""The bytes of an ExportMetricsServiceRequest: protobuf field tags by name, and a walk to the points.

The contract evaluator reads a point's timestamps, value and serialized attributes straight from the
request's wire bytes. Asking protobuf for them point by point means a Python wrapper and a
re-serialization per point, the largest cost on the proxy's hot path; walking the bytes the request
arrived in costs a few byte reads per point.

`number_point_regions` walks the nesting down to each metric's Gauge/Sum message (resource_metrics →
scope_metrics → metrics → gauge/sum); `data_points` walks the points inside one. Anything unexpected
(a group wire type, a truncated length) makes the walk give up and the caller falls back to the
protobuf objects, so a strange but valid request is only slower.

Field numbers are those of opentelemetry/proto/metrics/v1/metrics.proto and
collector/metrics/v1/metrics_service.proto. A tag is `field << 3 | wire type`; every tag named here
fits in one byte, which is how the hot loops compare them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Wire types
VARINT, I64, LEN, I32 = 0, 1, 2, 5


def tag(field: int, wire_type: int) -> int:
    return field << 3 | wire_type


# ExportMetricsServiceRequest, ResourceMetrics, ScopeMetrics
RESOURCE_METRICS = 1
RESOURCE, SCOPE_METRICS = 1, 2
SCOPE, METRICS = 1, 2
SCOPE_TAG = tag(SCOPE, LEN)
METRICS_TAG = tag(METRICS, LEN)
# Metric: the oneof `data` holds gauge, sum, histogram, exponential_histogram or summary
METRIC_NAME = 1
METRIC_UNIT = 3
GAUGE, SUM, HISTOGRAM, EXPONENTIAL_HISTOGRAM, SUMMARY = 5, 7, 9, 10, 11
GAUGE_TAG, SUM_TAG = tag(GAUGE, LEN), tag(SUM, LEN)
# Gauge and Sum
DATA_POINTS_TAG = tag(1, LEN)
AGGREGATION_TEMPORALITY_TAG = tag(2, VARINT)
IS_MONOTONIC_TAG = tag(3, VARINT)
# NumberDataPoint
START_TIME_TAG = tag(2, I64)  # start_time_unix_nano, fixed64
TIME_TAG = tag(3, I64)  # time_unix_nano, fixed64
AS_DOUBLE_TAG = tag(4, I64)
AS_INT_TAG = tag(6, I64)  # sfixed64
ATTRIBUTES_TAG = tag(7, LEN)
FLAGS_TAG = tag(8, VARINT)
# The layout protobuf writes a NumberDataPoint in when it has both times: start (9 bytes), time
# (9 bytes), value (9 bytes); the serialized attributes, if any, follow.
POINT_HEAD_SIZE = 27
TIME_TAG_OFFSET = 9
VALUE_TAG_OFFSET = 18

Regions = dict[tuple[int, int, int], tuple[int, int]]
# One Metric on the wire: (start, end) of its one Gauge/Sum message, its description key (below), and
# either (start, end) of the whole Metric or, when `QuickMetrics` knew it, (its point's head, the entry).
MetricWire = tuple[int, int, bytes | None, int, Any]
Layout = dict[tuple[int, int], list[MetricWire | None]]


class QuickMetrics:
    """One-point metrics seen before, found by all their bytes but the point's head (its timestamps and
    value): a load generator re-sends the same metrics, series and all, with new times and values.

    `table` maps such a key to an entry whose first four fields are where the head starts in the
    Metric, where its Gauge/Sum region starts and ends in it, and its description key; the rest is the
    caller's (what it learnt of that metric). A Metric whose bytes outside its head equal a known
    one's, at the same offsets, has the same structure, description and series, so the layout takes
    it in one slice and one look-up; the caller still reads the head and checks the value.
    `offset`: where the head sat in the last metric learnt (the first guess for the next)."""

    __slots__ = ("offset", "table")

    def __init__(self) -> None:
        self.table: dict[bytes, tuple[Any, ...]] = {}
        self.offset = 0

    def learn(self, buf: bytes, start: int, end: int, head: int, entry: tuple[Any, ...]) -> None:
        """Remember the Metric buf[start:end] whose point's head is at `head`; `entry` as above."""
        table = self.table
        if len(table) >= _MAX_QUICK:
            table.clear()  # bounded memory: start over rather than grow
        table[buf[start:head] + buf[head + POINT_HEAD_SIZE : end]] = entry
        self.offset = head - start


_MAX_QUICK = 50_000


class _Malformed(ValueError):
    """The bytes cannot be walked (callers outside this module see a ValueError)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field in buf[pos:end]; others skipped."""
    while pos < end:
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == LEN:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise _Malformed
            yield key >> 3, pos, pos + n
            pos += n
        elif wire == VARINT:
            _, pos = _varint(buf, pos)
        elif wire == I64:
            pos += 8
        elif wire == I32:
            pos += 4
        else:  # groups (3, 4) never appear in OTLP
            raise _Malformed
    if pos != end:
        raise _Malformed


def fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field in buf[pos:end]; ValueError when the
    bytes cannot be walked."""
    return _fields(buf, pos, end)


def skip_field(buf: bytes, pos: int) -> int:
    """The position after the field that starts at `pos`."""
    key, pos = _varint(buf, pos)
    wire = key & 7
    if wire == LEN:
        n, pos = _varint(buf, pos)
        return pos + n
    if wire == VARINT:
        return _varint(buf, pos)[1]
    if wire == I64:
        return pos + 8
    if wire == I32:
        return pos + 4
    raise _Malformed


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the varint at `pos`; ValueError when it is not one."""
    try:
        return _varint(buf, pos)
    except _Malformed:
        raise ValueError(f"no varint at byte {pos}") from None


def _metric_regions(buf: bytes, pos: int, end: int, ri: int, si: int, regions: Regions) -> None:
    """The Gauge/Sum region of each Metric of one ScopeMetrics (buf[pos:end]) into `regions`.

    The per-metric cost of the walk: a request of many one-point metrics has a Metric message per point,
    so this loop reads one-byte tags and lengths inline and calls the general varint reader only for
    the long ones. Every field of a Metric is length-delimited."""
    mi = 0
    while pos < end:
        key = buf[pos]
        if key & 7 != LEN or key >= 0x80:  # not length-delimited, or a field number >= 16: general path
            pos = skip_field(buf, pos)
            continue
        n = buf[pos + 1]
        i = pos + 2
        if n >= 0x80:
            n, i = _varint(buf, pos + 1)
        me = i + n
        if me > end:
            raise _Malformed
        if key == METRICS_TAG:
            found = None
            count = 0
            while i < me:
                t = buf[i]
                if t & 7 != LEN or t >= 0x80:
                    i = skip_field(buf, i)
                    continue
                ln = buf[i + 1]
                q = i + 2
                if ln >= 0x80:
                    ln, q = _varint(buf, i + 1)
                if t in (GAUGE_TAG, SUM_TAG):
                    found = (q, q + ln)
                    count += 1
                i = q + ln
            if i != me:
                raise _Malformed
            if count == 1:
                regions[(ri, si, mi)] = found  # type: ignore[assignment]
            mi += 1
        pos = me
    if pos != end:
        raise _Malformed


def _scope_layout(
    buf: bytes, pos: int, end: int, quick: QuickMetrics | None = None
) -> list[MetricWire | None]:
    """Each Metric of one ScopeMetrics (buf[pos:end]), in order: its Gauge/Sum region and key, or None
    (another kind, no data, or a data field that appears twice, which protobuf would merge).

    The key is the Metric's bytes without its data points: name, description, unit, the data field's
    tag, temporality, monotonic flag, metadata. Metrics with the same key have the same description,
    whatever their points, so what depends on the description alone is worked out once per key. None
    when the points are not together at the start of the region (an encoder's unusual order).
    This loop runs once per Metric of a request: one-byte tags and lengths of up to two bytes are
    read inline. Every field of a Metric is length-delimited. A metric `quick` knows is taken whole
    (see QuickMetrics)."""
    out: list[MetricWire | None] = []
    table = quick.table if quick is not None else None
    guess = quick.offset if quick is not None else 0
    while pos < end:
        key = buf[pos]
        if key & 7 != LEN or key >= 0x80:  # not length-delimited, or a field number >= 16: general path
            pos = skip_field(buf, pos)
            continue
        n = buf[pos + 1]
        i = pos + 2
        if n >= 0x80:
            if buf[pos + 2] < 0x80:
                n = (n & 0x7F) | (buf[pos + 2] << 7)
                i = pos + 3
            else:
                n, i = _varint(buf, pos + 1)
        me = i + n
        if me > end:
            raise _Malformed
        pos = me
        if key != METRICS_TAG:
            continue
        ms = i
        if table:
            h = ms + guess
            if h + POINT_HEAD_SIZE <= me:
                hit = table.get(buf[ms:h] + buf[h + POINT_HEAD_SIZE : me])
                if (
                    hit is not None
                    and hit[0] == guess
                    and buf[h] == START_TIME_TAG
                    and buf[h + TIME_TAG_OFFSET] == TIME_TAG
                    and (
                        buf[h + VALUE_TAG_OFFSET] == AS_DOUBLE_TAG or buf[h + VALUE_TAG_OFFSET] == AS_INT_TAG
                    )
                ):
                    out.append((ms + hit[1], ms + hit[2], hit[3], h, hit))
                    continue
        found: MetricWire | None = None
        count = 0
        while i < me:
            t = buf[i]
            if t & 7 != LEN or t >= 0x80:
                i = skip_field(buf, i)
                continue
            ln = buf[i + 1]
            q = i + 2
            if ln >= 0x80:
                if buf[i + 2] < 0x80:
                    ln = (ln & 0x7F) | (buf[i + 2] << 7)
                    q = i + 3
                else:
                    ln, q = _varint(buf, i + 1)
            if t in (GAUGE_TAG, SUM_TAG):
                re = q + ln
                count += 1
                tp = q  # the points come first, as protobuf writes them: find where they end
                while tp < re and buf[tp] == DATA_POINTS_TAG:
                    pn = buf[tp + 1]
                    if pn < 0x80:
                        tp += 2 + pn
                    elif buf[tp + 2] < 0x80:
                        tp += 3 + ((pn & 0x7F) | (buf[tp + 2] << 7))
                    else:
                        pn, tp = _varint(buf, tp + 1)
                        tp += pn
                k = tp  # then only other fields (temporality, monotonic: one-byte varints as a rule)
                trailer_ok = True
                while k < re:
                    if buf[k] == DATA_POINTS_TAG:
                        trailer_ok = False
                        break
                    k = k + 2 if buf[k] & 7 == VARINT and buf[k + 1] < 0x80 else skip_field(buf, k)
                if tp > re or k > re:
                    raise _Malformed
                found = (q, re, buf[ms : i + 1] + buf[tp:me] if trailer_ok else None, ms, me)
            i = q + ln
        if i != me:
            raise _Malformed
        out.append(found if count == 1 else None)
    if pos != end:
        raise _Malformed
    return out


def metric_layout(buf: bytes, quick: QuickMetrics | None = None) -> Layout | None:
    """(resource, scope) index -> each of its Metrics on the wire (see `_scope_layout`), in the order the
    parsed message lists them. None when the bytes cannot be walked; the caller then uses the parsed
    message alone."""
    layout: Layout = {}
    try:
        ri = 0
        for f, rs, re in _fields(buf, 0, len(buf)):
            if f != RESOURCE_METRICS:
                continue
            si = 0
            for f2, ss, se in _fields(buf, rs, re):
                if f2 == SCOPE_METRICS:
                    layout[(ri, si)] = _scope_layout(buf, ss, se, quick)
                    si += 1
            ri += 1
    except (_Malformed, IndexError):
        return None
    return layout


def number_point_regions(buf: bytes) -> Regions | None:
    """(resource, scope, metric) index -> (start, end) of its one Gauge or Sum message.

    Inside that region every `data_points` field (DATA_POINTS_TAG) is one point, in the order the parsed
    message lists them. A metric whose data field appears more than once (protobuf would merge them)
    gets no region. None when the bytes cannot be walked; the caller then uses the parsed message alone.
    The indexes follow the order in which repeated fields appear on the wire, as the parsed message does.
    """
    regions: Regions = {}
    try:
        ri = 0
        for f, rs, re in _fields(buf, 0, len(buf)):
            if f != RESOURCE_METRICS:
                continue
            si = 0
            for f2, ss, se in _fields(buf, rs, re):
                if f2 == SCOPE_METRICS:
                    _metric_regions(buf, ss, se, ri, si, regions)
                    si += 1
            ri += 1
    except (_Malformed, IndexError):
        return None
    return regions


def data_points(buf: bytes, region: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """(start, end) of each NumberDataPoint in one Gauge/Sum region, in order; other fields skipped."""
    pos, end = region
    while pos < end:
        if buf[pos] != DATA_POINTS_TAG:
            pos = skip_field(buf, pos)
            continue
        n, i = varint(buf, pos + 1)
        pos = i + n
        yield i, pos
