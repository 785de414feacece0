"""The JSON Lines of a plain metrics payload written straight from its wire bytes: the log writer's
fast path.

The writer process gets the payload's bytes and the proxy's verdicts (logwriter.py). Parsing and
evaluating the payload again only to learn each point's description, series and value repeats the
proxy's work; a payload the proxy found clean, of sum and gauge points in protobuf's own layout, needs
none of it. Its lines come from one walk of the bytes: a metric's line up to its attributes is
serialized once per description (kept across payloads, keyed on the resource's, the scope's and the
metric's bytes without its points), a series' attributes once per attribute bytes (the evaluating
encoder's cache, jsonl_fast.py, keys them on the same bytes), and the rest is a few byte reads per
point. A one-point metric met before (all its bytes but the point's times and value, as the evaluation's
labctl.otlp.wire.QuickMetrics keys it) has its line ready up to the value: one look-up, its head read.
protobuf parses the payload only when one of those caches misses.

Anything else makes `encode` answer None before writing a line, and the caller evaluates and encodes
the payload the general way: violations, other metric kinds, a point laid out otherwise, a value that
is not finite or a negative one on a monotonic sum (the evaluation would mark it itself).
tests/inspect/test_jsonl_wire.py holds both paths to the same bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from labctl.contract.numbers import describe
from labctl.otlp.signals import SIGNALS
from labctl.otlp.values import any_value, iso_time
from labctl.otlp.wire import (
    AS_DOUBLE_TAG,
    AS_INT_TAG,
    ATTRIBUTES_TAG,
    DATA_POINTS_TAG,
    FLAGS_TAG,
    GAUGE_TAG,
    LEN,
    METRICS_TAG,
    POINT_HEAD_SIZE,
    RESOURCE,
    RESOURCE_METRICS,
    SCOPE_METRICS,
    SCOPE_TAG,
    START_TIME_TAG,
    SUM_TAG,
    TIME_TAG,
    TIME_TAG_OFFSET,
    VALUE_TAG_OFFSET,
    VARINT,
    fields,
    skip_field,
    varint,
)
from labctl.proxy.inspect.jsonl_fast import JsonlEncoder
from labctl.proxy.inspect.store import clip_attrs, dumps
from labctl.redact import Redactor

_unpack_head_double = struct.Struct("<xQxQxd").unpack_from
_unpack_head_int = struct.Struct("<xQxQxq").unpack_from
_LINE = b'%s%s,"value":%r,"start_time_unix_nano":%d,"time_unix_nano":%d,"time":%s%s\n'
_QUICK_LINE = b'%s,"value":%r,"start_time_unix_nano":%d,"time_unix_nano":%d,"time":%s%s\n'


class _NotPlain(Exception):
    """The payload needs the general path."""


class WireLines:
    """The log writer's fast path. It keeps what it serialized once per description (a metric's line
    up to its attributes) across payloads, so a payload of known metrics and series is not even parsed
    by protobuf: its bytes are all it reads."""

    def __init__(self, encoder: JsonlEncoder, max_heads: int = 10_000) -> None:
        self.encoder = encoder  # its series cache holds the attributes as JSON, by their bytes
        self.max_heads = max_heads
        # (resource bytes, scope bytes, the Metric's bytes but its points) -> (redactor, line head,
        # kind, monotonic)
        self.heads: dict[tuple[bytes, bytes, bytes], tuple[Redactor, bytes, str, bool]] = {}
        # One-point metrics met before, by all their bytes but the point's head (times and value), as
        # labctl.otlp.wire.QuickMetrics keys them for the evaluation: (resource bytes, scope bytes, that
        # key) -> (where the head sits in the Metric, redactor, the line up to its value, monotonic).
        # A load generator re-sends the same metrics and series: their lines cost one look-up each.
        self.quick: dict[tuple[bytes, bytes, bytes], tuple[int, Redactor, bytes, bool]] = {}
        self.quick_offset = 0  # where the head sat in the last metric learnt: the first guess

    def encode(self, raw: bytes, red: Redactor, payload_id: int) -> bytes | None:
        """The lines of a metrics payload without violations, or None when it is not plain (see above)."""
        parsed: list[Any] = []  # the request, parsed only when a cache misses

        def request() -> Any:
            if not parsed:
                parsed.append(SIGNALS["metrics"].request_type.FromString(raw))
            return parsed[0]

        if len(self.heads) >= self.max_heads:
            self.heads.clear()  # bounded memory: start over rather than grow
        if len(self.quick) >= 5 * self.max_heads:
            self.quick.clear()
        try:
            parts: list[bytes] = []
            ri = 0
            for f, rs, re in fields(raw, 0, len(raw)):
                if f != RESOURCE_METRICS:
                    continue
                si = 0
                resource: bytes | None = None
                for f2, ss, se in fields(raw, rs, re):
                    if f2 == RESOURCE:
                        if resource is not None or si:  # merged by protobuf, or after the scopes
                            raise _NotPlain
                        resource = raw[ss:se]
                    elif f2 == SCOPE_METRICS:
                        self._scope(raw, ss, se, (ri, si), resource or b"", request, red, payload_id, parts)
                        si += 1
                ri += 1
            return b"".join(parts)
        except (_NotPlain, ValueError, IndexError):
            return None

    def _scope(
        self,
        b: bytes,
        pos: int,
        end: int,
        at: tuple[int, int],
        resource: bytes,
        request: Callable[[], Any],
        red: Redactor,
        payload_id: int,
        parts: list[bytes],
    ) -> None:
        """The lines of one ScopeMetrics (b[pos:end]) into `parts`, in one walk of its Metrics."""
        tail = b',"verdict":"ok","violations":[],"payload":%d}' % payload_id
        isfinite = math.isfinite
        iso_cache: dict[int, bytes] = {}
        append = parts.append
        encoder = self.encoder
        attrs_cache = encoder.attrs_cache
        heads = self.heads
        scope = b""  # the scope's bytes: with the resource's, what a metric's line head depends on
        metric_tag, gauge_tag, sum_tag, scope_tag = METRICS_TAG, GAUGE_TAG, SUM_TAG, SCOPE_TAG
        points_tag, start_tag, time_tag, double_tag, int_tag = (
            DATA_POINTS_TAG,
            START_TIME_TAG,
            TIME_TAG,
            AS_DOUBLE_TAG,
            AS_INT_TAG,
        )
        attrs_tag, flags_tag = ATTRIBUTES_TAG, FLAGS_TAG
        head_size, time_at, value_at = POINT_HEAD_SIZE, TIME_TAG_OFFSET, VALUE_TAG_OFFSET
        quick = self.quick
        guess = self.quick_offset
        mi = 0
        while pos < end:
            if b[pos] != metric_tag:  # the scope itself, its schema URL
                after = skip_field(b, pos)
                if b[pos] == scope_tag:
                    if scope or mi:  # merged by protobuf, or after the metrics
                        raise _NotPlain
                    scope = b[pos:after]
                pos = after
                continue
            # Lengths of one or two bytes are read inline: this loop runs once per Metric.
            n = b[pos + 1]
            if n < 0x80:
                ms = pos + 2
            elif b[pos + 2] < 0x80:
                n = (n & 0x7F) | (b[pos + 2] << 7)
                ms = pos + 3
            else:
                n, ms = varint(b, pos + 1)
            me = ms + n
            pos = me
            h = ms + guess  # a metric met before: its line is known up to the value
            if quick and h + head_size <= me:
                seen = quick.get((resource, scope, b[ms:h] + b[h + head_size : me]))
                if (
                    seen is not None
                    and seen[0] == guess
                    and seen[1] is red
                    and b[h] == start_tag
                    and b[h + time_at] == time_tag
                ):
                    tag = b[h + value_at]
                    if tag == double_tag:
                        start_ns, time_ns, value = _unpack_head_double(b, h)
                        if not isfinite(value):
                            raise _NotPlain
                    elif tag == int_tag:
                        start_ns, time_ns, value = _unpack_head_int(b, h)
                    else:
                        raise _NotPlain
                    if seen[3] and value < 0:
                        raise _NotPlain
                    iso = iso_cache.get(time_ns)
                    if iso is None:
                        stamp = iso_time(time_ns)
                        iso = iso_cache[time_ns] = b"null" if stamp is None else b'"' + stamp.encode() + b'"'
                    append(_QUICK_LINE % (seen[2], value, start_ns, time_ns, iso, tail))
                    mi += 1
                    continue
            j = ms  # name, description and unit come before the data field, as protobuf writes them
            t = b[j]
            while t != gauge_tag and t != sum_tag:
                if t & 7 != LEN or t >= 0x80:
                    raise _NotPlain
                n = b[j + 1]
                j = j + 2 + n if n < 0x80 else sum(varint(b, j + 1))
                if j >= me:
                    raise _NotPlain  # no number data (another kind, or none)
                t = b[j]
            n = b[j + 1]
            if n < 0x80:
                q = j + 2
            elif b[j + 2] < 0x80:
                n = (n & 0x7F) | (b[j + 2] << 7)
                q = j + 3
            else:
                n, q = varint(b, j + 1)
            de = q + n
            if de != me:
                raise _NotPlain  # metadata, or a data field written twice: the general path
            tp = q  # the points come first; then temporality and monotonic
            while tp < de and b[tp] == points_tag:
                pn = b[tp + 1]
                if pn < 0x80:
                    tp += 2 + pn
                elif b[tp + 2] < 0x80:
                    tp += 3 + ((pn & 0x7F) | (b[tp + 2] << 7))
                else:
                    tp = sum(varint(b, tp + 1))
            key = (resource, scope, b[ms : j + 1] + b[tp:de])
            known = heads.get(key)
            if known is None or known[0] is not red:
                known = heads[key] = (red, *self._metric(request, at, mi, red))
            _, head, kind, monotonic = known
            k = tp
            while k < de:  # the trailer (temporality, monotonic) holds no point
                t = b[k]
                if t == points_tag:
                    raise _NotPlain
                k = k + 2 if t & 7 == VARINT and b[k + 1] < 0x80 else skip_field(b, k)
            p = q
            pi = 0
            while p < tp:
                n = b[p + 1]
                if n < 0x80:
                    i = p + 2
                elif b[p + 2] < 0x80:
                    n = (n & 0x7F) | (b[p + 2] << 7)
                    i = p + 3
                else:
                    n, i = varint(b, p + 1)
                p = i + n  # this point is b[i:p]
                if n < head_size or b[i] != start_tag or b[i + time_at] != time_tag:
                    raise _NotPlain
                tag = b[i + value_at]
                if tag == double_tag:
                    start_ns, time_ns, value = _unpack_head_double(b, i)
                    if not isfinite(value):
                        raise _NotPlain
                elif tag == int_tag:
                    start_ns, time_ns, value = _unpack_head_int(b, i)
                else:
                    raise _NotPlain
                if monotonic and value < 0:
                    raise _NotPlain
                i += head_size
                if i != p and b[i] != attrs_tag and b[i] != flags_tag:
                    raise _NotPlain  # exemplars or another order: the general path
                skey = b[i:p]  # the series: the point's attribute bytes, as the evaluation keys it
                hit = attrs_cache.get(skey)
                if hit is not None and hit[0] is red:
                    attrs_json = hit[1]
                else:
                    m = request().resource_metrics[at[0]].scope_metrics[at[1]].metrics[mi]
                    point = getattr(m, kind).data_points[pi]
                    attrs = {kv.key: any_value(kv.value) for kv in point.attributes}
                    attrs_json = encoder.attrs_json(attrs, red, skey)
                iso = iso_cache.get(time_ns)
                if iso is None:
                    stamp = iso_time(time_ns)
                    iso = iso_cache[time_ns] = b"null" if stamp is None else b'"' + stamp.encode() + b'"'
                append(_LINE % (head, attrs_json, value, start_ns, time_ns, iso, tail))
                pi += 1
            if p != tp:
                raise _NotPlain
            if pi == 1:  # learnt whole for the next time (the point's head is the 27 bytes at p - n)
                h = p - n
                quick[(resource, scope, b[ms:h] + b[h + head_size : me])] = (
                    h - ms,
                    red,
                    head + attrs_json,
                    monotonic,
                )
                self.quick_offset = guess = h - ms
            mi += 1
        if pos != end:
            raise _NotPlain

    def _metric(
        self, request: Callable[[], Any], at: tuple[int, int], mi: int, red: Redactor
    ) -> tuple[bytes, str, bool]:
        """A metric's line up to its attributes (from its protobuf object), its kind and monotonic flag."""
        rm = request().resource_metrics[at[0]]
        sm = rm.scope_metrics[at[1]]
        name, kind, unit, temporality, monotonic, _ = describe(sm.metrics[mi])
        if kind != "sum" and kind != "gauge":
            raise _NotPlain
        header = dumps(
            {
                "signal": "metrics",
                "resource": clip_attrs(
                    red.attrs({kv.key: any_value(kv.value) for kv in rm.resource.attributes})
                ),
                "scope": {"name": sm.scope.name, "version": sm.scope.version},
                "name": name,
                "kind": kind,
                "unit": unit,
                "temporality": temporality,
                "monotonic": monotonic,
            }
        )
        return header[:-1] + b',"attributes":', kind, monotonic
