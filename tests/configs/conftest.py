"""Fixtures for the config tests: a real Collector and a real Prometheus on free ports, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.configs.confhelpers import (
    Collector,
    Prometheus,
    launch_prometheus,
    running_collector,
)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """The lab's Collector with collector-configs/base.yaml, every listener on a free loopback port."""
    with running_collector(tmp_path) as col:
        yield col


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Prometheus]]:
    """start_prometheus({"collector.json": "127.0.0.1:port", ...}) -> a ready Prometheus; stopped at the end."""
    started: list[Prometheus] = []

    def start(targets: dict[str, str]) -> Prometheus:
        prom = launch_prometheus(tmp_path / "prometheus", targets)
        started.append(prom)
        return prom

    try:
        yield start
    finally:
        for prom in started:
            prom.stop()
