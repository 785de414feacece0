"""The one parser for durations and sizes, in the two grammars labctl reads.

`parse_duration` / `parse_size`: what a person writes in labctl's own configuration (`500ms`, `10s`,
`1m`, `2h` or a number of seconds; `64MiB`, `512KiB`, `1MB` or a number of bytes); a bad value is a
LabError naming where it was and what to write.

`prometheus_duration`: what Prometheus itself prints (`1m30s`, `15s`, `1d`), read leniently: a value
Prometheus did not give (an empty field) falls back to the caller's default.
"""

from __future__ import annotations

import re
from typing import Any

from labctl.errors import LabError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Prometheus' duration grammar (model.ParseDuration): units largest first, each at most once.
_PROM_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
_PROM_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def parse_size(value: Any, where: str) -> int:
    """Bytes from `64MiB`, `512KiB`, `1MB` or a whole number of bytes; positive."""
    if isinstance(value, bool):
        raise LabError(f"{where}: {value!r} is not a size", "write a size like 64MiB, 512KiB or 1048576")
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise LabError(f"{where}: {value!r} is not a size", "write a size like 64MiB, 512KiB or 1048576")
        n = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower() or None])
    if n <= 0:
        raise LabError(f"{where}: size must be positive, got {value!r}", "use a positive size like 64MiB")
    return n


def parse_duration(value: Any, where: str) -> float:
    """Seconds from `500ms`, `10s`, `1m`, `2h` or a number of seconds; positive."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise LabError(f"{where}: {value!r} is not a duration", "write a duration like 500ms, 10s or 1m")
        secs = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if secs <= 0:
        raise LabError(
            f"{where}: duration must be positive, got {value!r}", "use a duration like 500ms or 10s"
        )
    return secs


def prometheus_duration(text: str | None, default: float) -> float:
    """Seconds from a duration as Prometheus prints it (`1m30s`); `default` when there is none."""
    parts = _PROM_PART.findall(text or "")
    if not parts:
        return default
    return sum(float(number) * _PROM_UNITS[unit] for number, unit in parts)
