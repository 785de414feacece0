from __future__ import annotations

import contextlib
import os
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


@pytest.fixture(params=["python", "go"])
def grpc_front(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which gRPC front the test's proxies start (labctl/proxy/grpc_front.py or the Go one): the test
    runs with each. The Go front must be built (`labctl install grpc-front`): without it its case is
    skipped, except under CI, where the proxy's start fails with what to do."""
    from labctl.proxy.grpc_front import CHOICE_VAR, go_front

    monkeypatch.setenv(CHOICE_VAR, "auto")
    if request.param == "go" and go_front() is None and os.environ.get("CI") != "true":
        pytest.skip("the Go gRPC front is not built: `labctl install grpc-front`")
    monkeypatch.setenv(CHOICE_VAR, request.param)
    return str(request.param)
