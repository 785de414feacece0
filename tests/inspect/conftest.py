from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from inspect_harness import ProxyProc


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., ProxyProc]]:
    """Start real proxy processes on free ports; all are stopped at the end, even on failure."""
    running: list[ProxyProc] = []

    def start(**sections: Any) -> ProxyProc:
        proxy = ProxyProc(tmp_path / f"proxy{len(running) + 1}", **sections)
        running.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in reversed(running):
            with contextlib.suppress(OSError):
                proxy.stop()


@pytest.fixture
def make_inspector() -> Iterator[Callable[..., Any]]:
    """Inspector(config, data_dir, ...) closed at the end (its JSONL writer process with it)."""
    from labctl.proxy.inspect import Inspector

    made: list[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        ins = Inspector(*args, **kwargs)
        made.append(ins)
        return ins

    try:
        yield make
    finally:
        for ins in made:
            ins.close()
