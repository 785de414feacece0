"""The records a payload keeps for the page and the API, redacted and clipped, built when first read.

A 1000-point export keeps its first `records_per_payload` records, yet the page opens few payloads:
building 200 dicts per request on the hot path would cost more than all the contract checks. So a
metrics payload keeps its items (small tuples without the protobuf request) and the redactor in force
when it arrived, and turns them into records the first time someone asks.
"""

from __future__ import annotations

from typing import Any

from labctl.contract.results import Item, metric_record
from labctl.proxy.inspect.store import clip_record
from labctl.redact import Redactor


def safe_record(rec: dict[str, Any], red: Redactor, resource_safe: bool | None = None) -> dict[str, Any]:
    """`rec` redacted (only when something in it needs it) and clipped: what may be shown or logged."""
    hidden = red.attributes
    if resource_safe is None:
        resource_safe = hidden.isdisjoint(rec.get("resource") or ())
    if rec["violations"] or not resource_safe or "body" in rec or not hidden.isdisjoint(rec["attributes"]):
        rec = red.record(rec)
    return clip_record(rec)


class LazyRecords:
    """The first records of a metrics payload; `build()` makes them once (violating ones are given)."""

    __slots__ = ("_built", "_items", "_records", "_red")

    def __init__(self, items: list[Item], built: dict[int, dict[str, Any]], red: Redactor) -> None:
        self._items = items
        self._built = {i: r for i, r in built.items() if i < len(items)}
        self._red = red
        self._records: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def build(self) -> list[dict[str, Any]]:
        if self._records is None:
            iso: dict[int, str | None] = {}
            safe: dict[int, bool] = {}
            hidden = self._red.attributes
            out = []
            for i, item in enumerate(self._items):
                rec = self._built.get(i)
                if rec is None:
                    meta = item.meta  # the items come from one request: its resources by index
                    ok = safe.get(meta.resource_index)
                    if ok is None:
                        ok = safe[meta.resource_index] = hidden.isdisjoint(meta.resource)
                    rec = safe_record(metric_record(item, iso), self._red, ok)
                out.append(rec)
            self._records = out
            self._items, self._built = [], {}  # the records replace what they were built from
        return self._records
