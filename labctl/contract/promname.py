"""OpenTelemetry → Prometheus metric names, as the Collector's prometheus exporter writes them.

Default translation (UnderscoreEscapingWithSuffixes): invalid characters become `_`, a known unit
is appended as a word (`s` → `seconds`), an unknown unit is kept as is, `{...}` annotations are
dropped, monotonic sums get `_total`, and the exporter's namespace is prefixed.
"""

from __future__ import annotations

import re
from functools import lru_cache

_UNIT_WORDS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_PER_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


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


def prometheus_name(
    name: str, unit: str = "", monotonic_sum: bool = False, namespace: str = "", gauge_ratio: bool = False
) -> str:
    # Like the Collector's translator: split into word tokens, drop "total" from counters (it is
    # re-added at the end), append the unit words unless the name already has them.
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]+", name) if t]
    if monotonic_sum:
        tokens = [t for t in tokens if t != "total"]
    suffix = "ratio" if gauge_ratio and unit == "1" else _unit_suffix(unit)
    for t in (x for x in re.split(r"[^a-zA-Z0-9:]+", suffix) if x):
        if t not in tokens or suffix.count("_") > 0:
            tokens.append(t)
    if monotonic_sum:
        tokens.append("total")
    base = "_".join(tokens)
    if namespace:
        base = f"{_INVALID.sub('_', namespace)}_{base}"
    if base and base[0].isdigit():
        base = "_" + base
    return base


@lru_cache(maxsize=4096)
def label_name(key: str) -> str:
    """An attribute key as a Prometheus label name. Remembered: the same few keys come with every point
    the proxy exposes, and the regular expression costs more than the look-up."""
    out = _INVALID_LABEL.sub("_", key)
    if out and out[0].isdigit():
        out = "key_" + out
    return out
