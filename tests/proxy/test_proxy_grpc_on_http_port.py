"""A real gRPC client pointed at the proxy's OTLP/HTTP port: the log gets one clear line naming the right
port and protocol, not aiohttp's BadHttpMessage traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from labctl.otlp.probe import grpc_export


@pytest.mark.integration
def test_grpc_client_on_the_http_port_logs_one_clear_line(
    start_proxy: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    proxy = start_proxy()
    http_port, grpc_port = proxy.server.ports["otlp_http"], proxy.server.ports["otlp_grpc"]
    with caplog.at_level(logging.INFO):
        for _ in range(2):  # a retrying exporter: still one line
            code, _ = grpc_export(f"127.0.0.1:{http_port}", timeout=3)
            assert code != grpc.StatusCode.OK
    hints = [r for r in caplog.records if "gRPC (HTTP/2) client" in r.getMessage()]
    assert len(hints) == 1, [r.getMessage() for r in caplog.records]
    assert hints[0].getMessage() == (
        f"a gRPC (HTTP/2) client spoke to the OTLP/HTTP port :{http_port} — use the gRPC port :{grpc_port} "
        "or OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
    )
    assert hints[0].levelname == "WARNING"
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"
    assert not [r for r in caplog.records if "PRI/Upgrade" in r.getMessage()]
