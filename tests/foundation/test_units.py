"""The one parser for durations and sizes: labctl's config grammar and Prometheus' own."""

from __future__ import annotations

import pytest

from labctl.errors import LabError
from labctl.units import parse_duration, parse_size, prometheus_duration


def test_config_durations_and_sizes() -> None:
    assert [parse_duration(v, "x") for v in ("500ms", "10s", "1m", "2h", "3", 1.5)] == [
        0.5,
        10,
        60,
        7200,
        3,
        1.5,
    ]
    assert [parse_size(v, "x") for v in ("64MiB", "512KiB", "1MB", 1048576)] == [
        64 * 2**20,
        512 * 1024,
        10**6,
        1048576,
    ]
    for bad in ("-3s", "1m30s", "soon", True, 0):
        with pytest.raises(LabError, match=r"upstream\.timeout"):
            parse_duration(bad, "upstream.timeout")
    for bad in ("lots", "-1MiB", False, 0):
        with pytest.raises(LabError, match=r"log\.max_bytes"):
            parse_size(bad, "log.max_bytes")


def test_prometheus_durations_fall_back_to_the_default() -> None:
    assert prometheus_duration("1m30s", 0) == 90
    assert prometheus_duration("15s", 0) == 15 and prometheus_duration("250ms", 0) == 0.25
    assert prometheus_duration("1d", 0) == 86400 and prometheus_duration("1w", 0) == 604800
    assert prometheus_duration("", 7.5) == 7.5 and prometheus_duration(None, 2) == 2
