"""The gRPC front (labctl/proxy/grpc_front.py): a child process serves gRPC, the proxy decides.

What clients see through it (status codes, partial success, RetryInfo, size limits, auth) is held by
test_proxy_responses.py and the SDK-client tests; these hold the process itself: it goes when the
proxy goes, and a front that dies does not leave gRPC clients without an answer.
"""

from __future__ import annotations

import signal

import grpc
import psutil
import pytest
from proxy_harness import make_config, wait_for
from proxy_payloads import token_usage
from proxy_process import ProxyProcess

METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def _front_of(pid: int) -> psutil.Process:
    fronts = [p for p in psutil.Process(pid).children() if "labctl.proxy.grpc_front" in " ".join(p.cmdline())]
    assert len(fronts) == 1, fronts
    return fronts[0]


def _export(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary(METHOD)(token_usage(3).SerializeToString(), timeout=5)
        except grpc.RpcError:
            return False
    return True


@pytest.mark.integration
def test_a_killed_front_is_replaced_by_grpc_in_the_proxy_itself(start_proxy):
    proxy = start_proxy()
    assert _export(proxy.grpc)
    front = proxy.server._front
    assert front is not None and front.proc is not None
    front.proc.kill()
    wait_for(lambda: _export(proxy.grpc), what="gRPC answered again after its front was killed")
    assert proxy.server._front is None  # served in-process now
    assert proxy.stats()["counters"]["accepted"]["metrics"] >= 6


@pytest.mark.integration
def test_the_front_ends_with_a_proxy_killed_with_sigkill(tmp_path):
    proxy = ProxyProcess(make_config(tmp_path / "data"), tmp_path).start()
    try:
        assert proxy.proc is not None
        front = _front_of(proxy.proc.pid)
        assert _export(proxy.raw["listen"]["otlp_grpc"])
        proxy.kill(signal.SIGKILL)
        wait_for(lambda: not front.is_running() or front.status() == psutil.STATUS_ZOMBIE, 10, "front gone")
    finally:
        proxy.stop()
