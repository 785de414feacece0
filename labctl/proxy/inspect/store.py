"""What the inspector keeps: a ring buffer of recent payloads, recent violations, and the JSON Lines log.

Everything here is already redacted. Memory is bounded by the ring sizes and records per payload; the
log file rotates at `max_bytes` (one previous file kept as `.1`).
"""

from __future__ import annotations

import builtins
import itertools
import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError:  # e.g. an integer beyond 64 bits: fall back, never fail a write
            return json.dumps(obj, default=str).encode()
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback keeps the log working

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, default=str, separators=(",", ":")).encode()


log = logging.getLogger("labctl.proxy.inspect")

MAX_VALUE_CHARS = 2048  # longer attribute strings are clipped in the log, the page and the API


def clip_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The same dict unless a string value is longer than MAX_VALUE_CHARS (memory and page stay bounded)."""
    for v in attrs.values():
        if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
            break
    else:
        return attrs
    return {
        k: (
            v[:MAX_VALUE_CHARS] + f"…(+{len(v) - MAX_VALUE_CHARS} chars)"
            if isinstance(v, str) and len(v) > MAX_VALUE_CHARS
            else v
        )
        for k, v in attrs.items()
    }


def clip_record(rec: dict[str, Any]) -> dict[str, Any]:
    attrs = rec.get("attributes")
    res = rec.get("resource")
    body = rec.get("body")
    new_attrs = clip_attrs(attrs) if isinstance(attrs, dict) else attrs
    new_res = clip_attrs(res) if isinstance(res, dict) else res
    new_body = (
        body[:MAX_VALUE_CHARS] + f"…(+{len(body) - MAX_VALUE_CHARS} chars)"
        if isinstance(body, str) and len(body) > MAX_VALUE_CHARS
        else body
    )
    if new_attrs is attrs and new_res is res and new_body is body:
        return rec
    out = dict(rec)
    out["attributes"], out["resource"] = new_attrs, new_res
    if "body" in rec:
        out["body"] = new_body
    return out


class PayloadStore:
    def __init__(self, max_payloads: int = 200, max_records: int = 200, max_violations: int = 1000) -> None:
        self.max_records = max_records
        self.payloads: deque[dict[str, Any]] = deque(maxlen=max_payloads)
        self.violations: deque[dict[str, Any]] = deque(maxlen=max_violations)
        self._seq = itertools.count(1)
        self._vseq = itertools.count(1)
        self.last_seq = 0
        self.last_violation_seq = 0

    def add(
        self, summary: dict[str, Any], records: Any, violating: list[dict[str, Any]], total: int
    ) -> dict[str, Any]:
        """`records`: the first records of the payload (at most max_records), a list or a LazyRecords
        (built by `get`); `violating`: every violating one."""
        seq = next(self._seq)
        self.last_seq = seq
        summary["seq"] = seq
        summary["id"] = seq
        summary["records_truncated"] = max(0, total - min(len(records), self.max_records))
        entry = dict(summary)
        entry["records"] = records[: self.max_records] if isinstance(records, list) else records
        self.payloads.append(entry)
        for rec in violating:
            for v in rec["violations"]:
                vseq = next(self._vseq)
                self.last_violation_seq = vseq
                self.violations.append(
                    {
                        "seq": vseq,
                        "payload_id": seq,
                        "time": summary["time"],
                        "signal": rec["signal"],
                        "name": rec.get("name"),
                        "session_id": (rec.get("attributes") or {}).get("session.id"),
                        "path": v["path"],
                        "rule": v["rule"],
                        "message": v["message"],
                    }
                )
        return entry

    def list(
        self, after: int = 0, limit: int = 50, signal: str | None = None, verdict: str | None = None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for p in reversed(self.payloads):
            if p["seq"] <= after:
                break
            if signal and p["signal"] != signal:
                continue
            if verdict and p["verdict"] != verdict:
                continue
            out.append({k: v for k, v in p.items() if k != "records"})
            if len(out) >= limit:
                break
        return out

    def get(self, pid: int) -> dict[str, Any] | None:
        """One payload with its records (built now if they were kept lazily)."""
        for p in self.payloads:
            if p["seq"] == pid:
                if not isinstance(p["records"], list):
                    p["records"] = p["records"].build()
                return p
        return None

    def list_violations(
        self, after: int = 0, limit: int = 100, rule: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for v in reversed(self.violations):
            if v["seq"] <= after:
                break
            if rule and v["rule"] != rule:
                continue
            out.append(v)
            if len(out) >= limit:
                break
        return out


class JsonlLog:
    """One JSON object per line: every data point / event record, plus alert transitions."""

    def __init__(self, path: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")  # noqa: SIM115 - kept open for the proxy's lifetime
        self._size = self._fh.tell()
        self.failed = False

    def write(self, objs: list[dict[str, Any]]) -> None:
        if objs:
            self.write_bytes(b"\n".join(dumps(o) for o in objs) + b"\n")

    def write_bytes(self, data: bytes) -> None:
        if not data:
            return
        try:
            if self._size + len(data) > self.max_bytes and self._size:
                self._rotate()
            self._fh.write(data)
            self._fh.flush()
            self._size += len(data)
        except OSError as exc:
            if not self.failed:  # say it once; inspection must not stop the proxy
                log.error("cannot write the inspection log %s: %s", self.path, exc)
            self.failed = True

    def _rotate(self) -> None:
        self._fh.close()
        self.path.replace(self.path.with_name(self.path.name + ".1"))
        self._fh = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass
