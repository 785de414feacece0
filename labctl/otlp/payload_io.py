"""Reading OTLP payload files for offline checks: protobuf or OTLP/JSON, plain or gzip, signal detected."""

from __future__ import annotations

import gzip
import json
from typing import Any

from labctl.errors import LabError
from labctl.otlp import codec
from labctl.otlp.signals import SIGNALS

_JSON_KEYS = {
    "resourceMetrics": "metrics",
    "resource_metrics": "metrics",
    "resourceLogs": "logs",
    "resource_logs": "logs",
    "resourceSpans": "traces",
    "resource_spans": "traces",
}
MAX_BYTES = 256 * 1024 * 1024


def _decode(signal: str, body: bytes, media: str, source: str) -> Any:
    try:
        return codec.decode(SIGNALS[signal], body, media)
    except codec.CodecError as exc:
        raise LabError(
            f"{source}: {exc.message}",
            "pass an OTLP Export*ServiceRequest as protobuf or OTLP/JSON (--signal if it is ambiguous)",
        ) from None


def _looks_like(signal: str, msg: Any) -> bool:
    if signal == "metrics":
        return any(
            m.WhichOneof("data") for rm in msg.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        )
    if signal == "logs":
        return any(
            lr.time_unix_nano or lr.observed_time_unix_nano or len(lr.attributes) or lr.HasField("body")
            for rl in msg.resource_logs
            for sl in rl.scope_logs
            for lr in sl.log_records
        )
    return any(
        len(sp.trace_id) == 16 for rs in msg.resource_spans for ss in rs.scope_spans for sp in ss.spans
    )


def read_payloads(data: bytes, source: str, signal: str = "auto") -> list[tuple[str, Any]]:
    """Every request in a file: one payload, or JSON Lines of OTLP/JSON requests (as the Collector's
    file exporter writes them)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise LabError(
                f"{source}: broken gzip data: {exc}", "pass the payload uncompressed or as valid gzip"
            ) from None
    stripped = data.strip()
    if stripped[:1] == b"{" and b"\n" in stripped:
        lines = [ln for ln in stripped.split(b"\n") if ln.strip()]
        if len(lines) > 1 and all(ln.lstrip()[:1] == b"{" and ln.rstrip()[-1:] == b"}" for ln in lines):
            try:
                json.loads(stripped)
            except ValueError:  # not one document: JSON Lines
                return [read_payload(ln, f"{source} line {i + 1}", signal) for i, ln in enumerate(lines)]
    return [read_payload(data, source, signal)]


def read_payload(data: bytes, source: str, signal: str = "auto") -> tuple[str, Any]:
    """(signal, Export*ServiceRequest) from the bytes of a payload file."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise LabError(
                f"{source}: broken gzip data: {exc}", "pass the payload uncompressed or as valid gzip"
            ) from None
    if len(data) > MAX_BYTES:
        raise LabError(
            f"{source}: {len(data)} bytes is more than an OTLP payload should be",
            "split the file into requests of at most 256 MiB",
        )
    stripped = data.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            tree = json.loads(stripped)
        except ValueError as exc:
            raise LabError(
                f"{source}: looks like JSON but does not parse: {exc}",
                "fix the JSON (the error says where) or pass a protobuf file",
            ) from None
        if signal == "auto":
            keys = [k for k in (tree if isinstance(tree, dict) else {}) if k in _JSON_KEYS]
            if not keys:
                raise LabError(
                    f"{source}: JSON without resourceMetrics, resourceLogs or resourceSpans",
                    "an OTLP/JSON payload starts with one of those keys",
                )
            signal = _JSON_KEYS[keys[0]]
        return signal, _decode(signal, stripped, "application/json", source)
    if signal != "auto":
        return signal, _decode(signal, data, "application/x-protobuf", source)
    # Every Export*ServiceRequest has its list at field 1: try each and keep the one whose content makes sense.
    for candidate in ("metrics", "logs", "traces"):
        try:
            msg = _decode(candidate, data, "application/x-protobuf", source)
        except LabError:
            continue
        if _looks_like(candidate, msg):
            return candidate, msg
    raise LabError(
        f"{source}: not a recognisable OTLP protobuf payload (metrics, logs or traces)",
        "check the file, or pass --signal metrics|logs|traces",
    )
