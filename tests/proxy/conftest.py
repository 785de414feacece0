from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from proxy_harness import RunningProxy, make_config


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., RunningProxy]]:
    """Start real proxies (in-process, free ports); all are stopped at the end, even on failure."""
    running: list[RunningProxy] = []
    count = 0

    def start(**sections: Any) -> RunningProxy:
        nonlocal count
        count += 1
        proxy = RunningProxy(make_config(tmp_path / f"proxy{count}", **sections))
        running.append(proxy)
        return proxy

    try:
        yield start
    finally:
        for proxy in reversed(running):
            with contextlib.suppress(RuntimeError, TimeoutError, OSError):
                proxy.stop()
