"""Small, fast conversions from OTLP protobuf values to plain Python (JSON-ready) values."""

from __future__ import annotations

import math
import time
from typing import Any

# OTLP Span.SpanKind numbers -> the names the contract and records use
SPAN_KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def any_value(v: Any) -> Any:
    """An AnyValue as a plain value; bytes as hex, kvlists as dicts."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def iso_time(unix_nano: int) -> str | None:
    if not unix_nano:
        return None
    secs, nanos = divmod(unix_nano, 1_000_000_000)
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos // 1_000_000:03d}Z"
    except (OverflowError, OSError, ValueError):
        return None


def json_number(x: float | None) -> float | int | str | None:
    """JSON has no NaN/Inf: write them as strings so a record still shows what was sent."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")
    return x


def attrs_key(attrs: dict[str, Any]) -> Any:
    """A hashable identity of an attributes dict (its series within a metric) when no wire bytes are at
    hand; values that do not sort against each other fall back to their repr."""
    try:
        return tuple(sorted(attrs.items()))
    except TypeError:
        return repr(sorted(attrs.items(), key=lambda kv: kv[0]))
