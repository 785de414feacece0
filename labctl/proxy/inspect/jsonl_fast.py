"""The JSON Lines of one export request, written without building a dict per data point.

A proxy sees the same series again every export interval, and most points carry nothing to redact and
no violation. So the parts that repeat are serialized once: the metric's header (signal, resource,
scope, name, kind, unit, temporality) per Metric message, the attributes per series (keyed on the
series id the contract gives each point, and on the redactor in force). Violating points, events and spans are
written from their full records. The lines are the same JSON objects as `Evaluation.records`, plus
the payload id.
"""

from __future__ import annotations

import math
from typing import Any

from labctl.contract import Evaluation, SeriesId
from labctl.otlp.values import iso_time
from labctl.proxy.inspect.store import clip_attrs, clip_record, dumps
from labctl.redact import Redactor


class JsonlEncoder:
    def __init__(self, max_cached: int = 50_000) -> None:
        # series id -> (redactor, the attributes as JSON); a series id is its attributes' content
        self.attrs_cache: dict[SeriesId, tuple[Redactor, bytes]] = {}
        self.max_cached = max_cached

    def attrs_json(self, attrs: dict[str, Any], red: Redactor, series: SeriesId | None) -> bytes:
        if series is not None:
            hit = self.attrs_cache.get(series)
            if hit is not None and hit[0] is red:
                return hit[1]
        data = dumps(clip_attrs(red.attrs(attrs)))
        if series is not None:
            if len(self.attrs_cache) >= self.max_cached:
                self.attrs_cache.clear()
            self.attrs_cache[series] = (red, data)
        return data

    def encode(
        self, ev: Evaluation, red: Redactor, payload_id: int, records: dict[int, dict[str, Any]]
    ) -> bytes:
        """`records`: already built (and redacted) records by item index; used as they are."""
        tail_ok = b',"verdict":"ok","violations":[],"payload":' + str(payload_id).encode() + b"}"
        if ev.signal != "metrics":
            out = []
            for i in range(ev.total):
                rec = records.get(i)
                if rec is None:
                    rec = clip_record(red.record(ev.record(i)))
                out.append(dumps({**rec, "payload": payload_id}))
            return b"\n".join(out) + b"\n" if out else b""
        parts: list[bytes] = []
        # A header per distinct (resource, scope, name, kind, unit, temporality, monotonic) of this
        # request: a request of many one-point metrics of a few names serializes a few headers.
        headers: dict[tuple[Any, ...], bytes] = {}
        iso_cache: dict[int, bytes] = {}
        resources: dict[int, dict[str, Any]] = {}
        last_meta: Any = None
        head = b""
        attrs_cache = self.attrs_cache
        line = b'%s%s,"value":%r,"start_time_unix_nano":%d,"time_unix_nano":%d,"time":%s%s\n'
        for i, item in enumerate(ev.items):
            meta, value, t = item.meta, item.value, item.time_ns
            if (
                item.violations
                or meta.kind not in ("sum", "gauge")
                or value is None
                or (value.__class__ is float and not math.isfinite(value))
            ):
                rec = records.get(i)
                if rec is None:
                    rec = clip_record(red.record(ev.record(i)))
                parts.append(dumps({**rec, "payload": payload_id}))
                parts.append(b"\n")
                continue
            if meta is not last_meta:
                last_meta = meta
                # resource and scope by their index in the request
                hkey = (
                    ri0 := meta.resource_index,
                    meta.scope_index,
                    meta.name,
                    meta.kind,
                    meta.unit,
                    meta.temporality,
                    meta.monotonic,
                )
                cached = headers.get(hkey)
                if cached is None:
                    res = resources.get(ri0)
                    if res is None:
                        res = resources[ri0] = clip_attrs(red.attrs(meta.resource))
                    cached = dumps(
                        {
                            "signal": "metrics",
                            "resource": res,
                            "scope": meta.scope,
                            "name": meta.name,
                            "kind": meta.kind,
                            "unit": meta.unit,
                            "temporality": meta.temporality,
                            "monotonic": meta.monotonic,
                        }
                    )
                    cached = headers[hkey] = cached[:-1] + b',"attributes":'
                head = cached
            iso = iso_cache.get(t)
            if iso is None:
                stamp = iso_time(t)
                iso = iso_cache[t] = b"null" if stamp is None else b'"' + stamp.encode() + b'"'
            series = item.series
            hit = attrs_cache.get(series) if series is not None else None
            attrs = (
                hit[1] if hit is not None and hit[0] is red else self.attrs_json(item.attributes, red, series)
            )
            # one line in one formatting step; %r of an int or a float is its JSON number here (finite)
            parts.append(line % (head, attrs, value, item.start_ns, t, iso, tail_ok))
        return b"".join(parts)
