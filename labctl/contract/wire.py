"""Where the sum/gauge data points sit in the bytes of an ExportMetricsServiceRequest.

The evaluator reads a point's timestamps, value and serialized attributes straight from the request's
wire bytes (see `Contract._known_points`). Asking protobuf for them point by point means a Python
wrapper and a re-serialization per point, the largest cost on the proxy's hot path; walking the bytes
the request arrived in costs a few byte reads per point.

Only the nesting down to each metric's Gauge/Sum message is walked here (resource_metrics →
scope_metrics → metrics → gauge/sum); the evaluator walks the points inside it. Anything unexpected
(a group wire type, a truncated length) makes the walk give up and the caller falls back to the
protobuf objects, so a strange but valid request is only slower.
"""

from __future__ import annotations

from collections.abc import Iterator

# Field numbers (opentelemetry/proto/metrics/v1/metrics.proto, collector/metrics/v1/metrics_service.proto)
_RESOURCE_METRICS = 1  # ExportMetricsServiceRequest
_SCOPE_METRICS = 2  # ResourceMetrics
_METRICS = 2  # ScopeMetrics
_GAUGE, _SUM = 5, 7  # Metric (oneof data)
# The same as the one-byte tags they are written with (field number << 3 | wire type 2)
_METRICS_TAG = _METRICS << 3 | 2
_GAUGE_TAG, _SUM_TAG = _GAUGE << 3 | 2, _SUM << 3 | 2

Regions = dict[tuple[int, int, int], tuple[int, int]]


class _Malformed(Exception):
    pass


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
        if wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise _Malformed
            yield key >> 3, pos, pos + n
            pos += n
        elif wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:  # groups (3, 4) never appear in OTLP
            raise _Malformed
    if pos != end:
        raise _Malformed


def skip_field(buf: bytes, pos: int) -> int:
    """The position after the field that starts at `pos`."""
    key, pos = _varint(buf, pos)
    wire = key & 7
    if wire == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
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
        tag = buf[pos]
        if tag & 7 != 2 or tag >= 0x80:  # not length-delimited, or a field number >= 16: general path
            pos = skip_field(buf, pos)
            continue
        n = buf[pos + 1]
        i = pos + 2
        if n >= 0x80:
            n, i = _varint(buf, pos + 1)
        me = i + n
        if me > end:
            raise _Malformed
        if tag == _METRICS_TAG:
            found = None
            count = 0
            while i < me:
                t = buf[i]
                if t & 7 != 2 or t >= 0x80:
                    i = skip_field(buf, i)
                    continue
                ln = buf[i + 1]
                q = i + 2
                if ln >= 0x80:
                    ln, q = _varint(buf, i + 1)
                if t in (_GAUGE_TAG, _SUM_TAG):
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


def number_point_regions(buf: bytes) -> Regions | None:
    """(resource, scope, metric) index -> (start, end) of its one Gauge or Sum message.

    Inside that region every `data_points` field (tag 0x0A) is one point, in the order the parsed
    message lists them. A metric whose data field appears more than once (protobuf would merge them)
    gets no region. None when the bytes cannot be walked; the caller then uses the parsed message alone.
    The indexes follow the order in which repeated fields appear on the wire, as the parsed message does.
    """
    regions: Regions = {}
    try:
        ri = 0
        for f, rs, re in _fields(buf, 0, len(buf)):
            if f != _RESOURCE_METRICS:
                continue
            si = 0
            for f2, ss, se in _fields(buf, rs, re):
                if f2 == _SCOPE_METRICS:
                    _metric_regions(buf, ss, se, ri, si, regions)
                    si += 1
            ri += 1
    except (_Malformed, IndexError):
        return None
    return regions
