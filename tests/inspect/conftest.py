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
