"""The JSON Lines of one export request, written without building a dict per data point.

A proxy sees the same series again every export interval, and most points carry nothing to redact and
no violation. So the parts that repeat are serialized once: the metric's header (signal, resource,
scope, name, kind, unit, temporality) per Metric message, the attributes per series (kept while the
contract's series cache keeps that attributes dict alive). Violating points, events and spans are
written from their full records. The lines are the same JSON objects as `Evaluation.records`, plus
the payload id.
"""

from __future__ import annotations

import math
from typing import Any

from labctl.contract import Evaluation
from labctl.otlp.values import iso_time
from labctl.proxy.inspect.store import clip_attrs, clip_record, dumps
from labctl.redact import Redactor


class JsonlEncoder:
    def __init__(self, max_cached: int = 50_000) -> None:
        self._attrs: dict[int, tuple[dict[str, Any], Redactor, bytes]] = {}
        self.max_cached = max_cached

    def _attrs_json(self, attrs: dict[str, Any], red: Redactor, cacheable: bool) -> bytes:
        if cacheable:
            hit = self._attrs.get(id(attrs))
            if hit is not None and hit[0] is attrs and hit[1] is red:
                return hit[2]
        data = dumps(clip_attrs(red.attrs(attrs)))
        if cacheable:
            if len(self._attrs) >= self.max_cached:
                self._attrs.clear()
            self._attrs[id(attrs)] = (attrs, red, data)  # holding attrs keeps its id from being reused
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
        for i, item in enumerate(ev.items):
            meta, _pi, _p, attrs, value, viol, skey, start_ns, t = item
            if (
                viol
                or meta[3] not in ("sum", "gauge")
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
                hkey = (meta[7], meta[8], *meta[2:7])  # resource and scope by their index in the request
                cached = headers.get(hkey)
                if cached is None:
                    ri = meta[7]
                    res = resources.get(ri)
                    if res is None:
                        res = resources[ri] = clip_attrs(red.attrs(meta[0]))
                    cached = dumps(
                        {
                            "signal": "metrics",
                            "resource": res,
                            "scope": meta[1],
                            "name": meta[2],
                            "kind": meta[3],
                            "unit": meta[4],
                            "temporality": meta[5],
                            "monotonic": meta[6],
                        }
                    )
                    cached = headers[hkey] = cached[:-1] + b',"attributes":'
                head = cached
            iso = iso_cache.get(t)
            if iso is None:
                stamp = iso_time(t)
                iso = iso_cache[t] = b"null" if stamp is None else b'"' + stamp.encode() + b'"'
            parts.append(head)
            parts.append(self._attrs_json(attrs, red, skey is not None))
            parts.append(
                b',"value":%s,"start_time_unix_nano":%d,"time_unix_nano":%d,"time":%s'
                % (
                    repr(value).encode() if value.__class__ is float else str(value).encode(),
                    start_ns,
                    t,
                    iso,
                )
            )
            parts.append(tail_ok)
            parts.append(b"\n")
        return b"".join(parts)
