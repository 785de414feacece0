"""One clear log line instead of aiohttp's traceback when a gRPC (HTTP/2) client talks to the OTLP/HTTP port.

A gRPC exporter pointed at :4318 opens with the HTTP/2 preface (`PRI * HTTP/2.0`); aiohttp's HTTP/1.1
parser rejects it with BadHttpMessage "Pause on PRI/Upgrade" and logs a traceback at ERROR. That is a
client configuration mistake, so the proxy says which port or protocol to use instead.
"""

from __future__ import annotations

import logging
import time

from aiohttp.http_exceptions import BadHttpMessage

SERVER_LOGGER = "aiohttp.server"  # the logger aiohttp's request handler reports protocol errors on


class GrpcOnHttpPortHint(logging.Filter):
    def __init__(self, http_port: int, grpc_port: int | None, every_s: float = 10.0) -> None:
        super().__init__()
        self.http_port, self.grpc_port, self.every_s = http_port, grpc_port, every_s
        self._last = 0.0

    def message(self) -> str:
        use = f"use the gRPC port :{self.grpc_port} or " if self.grpc_port else "use "
        return (
            f"a gRPC (HTTP/2) client spoke to the OTLP/HTTP port :{self.http_port} — "
            f"{use}OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
        )

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, BadHttpMessage) or "PRI" not in str(exc):
            return True
        now = time.monotonic()
        if now - self._last < self.every_s:
            return False  # a retrying exporter repeats it every few seconds: one line per 10 s is enough
        self._last = now
        record.msg, record.args, record.exc_info, record.exc_text = self.message(), (), None, None
        record.levelno, record.levelname, record.name = logging.WARNING, "WARNING", "labctl.proxy"
        return True


def install(http_port: int, grpc_port: int | None) -> GrpcOnHttpPortHint:
    hint = GrpcOnHttpPortHint(http_port, grpc_port)
    logging.getLogger(SERVER_LOGGER).addFilter(hint)
    return hint


def uninstall(hint: GrpcOnHttpPortHint) -> None:
    logging.getLogger(SERVER_LOGGER).removeFilter(hint)
