"""OpenTelemetry → Prometheus metric names, as the Collector's prometheus exporter writes them.

Default translation (UnderscoreEscapingWithSuffixes): invalid characters become `_`, a known unit
is appended as a word (`s` → `seconds`), an unknown unit is kept as is, `{...}` annotations are
dropped, monotonic sums get `_total`, and the exporter's namespace is prefixed.
"""

from __future__ import annotations

import re

_UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes",
    "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes", "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts",
    "g": "grams", "Cel": "celsius", "Hz": "hertz", "%": "percent",
}
_PER_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_MULTI = re.compile(r"__+")


def _unit_suffix(unit: str) -> str:
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if not unit or unit == "1":
        return ""
    if "/" in unit:
        num, _, per = unit.partition("/")
        left = _UNIT_WORDS.get(num, num)
        right = _PER_WORDS.get(per, per)
        return f"{left}_per_{right}" if left else f"per_{right}"
    return _UNIT_WORDS.get(unit, unit)


def prometheus_name(name: str, unit: str = "", monotonic_sum: bool = False, namespace: str = "",
                    gauge_ratio: bool = False) -> str:
    base = _MULTI.sub("_", _INVALID.sub("_", name)).strip("_")
    suffix = _INVALID.sub("_", _unit_suffix(unit)).strip("_")
    if gauge_ratio and unit == "1":
        suffix = "ratio"
    if suffix and not base.endswith("_" + suffix) and base != suffix:
        base = f"{base}_{suffix}"
    if monotonic_sum and not base.endswith("_total"):
        base += "_total"
    if namespace:
        base = f"{_INVALID.sub('_', namespace)}_{base}"
    if base and base[0].isdigit():
        base = "_" + base
    return base


def label_name(key: str) -> str:
    out = _INVALID_LABEL.sub("_", key)
    if out and out[0].isdigit():
        out = "key_" + out
    return out
