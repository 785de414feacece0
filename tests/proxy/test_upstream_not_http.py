"""An upstream that does not answer HTTP/1.1 is described in words, never as aiohttp's bytes repr.

The answers come from a real socket server in this process (no child processes): the proxy's real
HTTP sender posts to it and reports what came back.
"""

from __future__ import annotations

import asyncio

from labctl.proxy.config import UpstreamSettings
from labctl.proxy.upstream import RETRYABLE, HttpSender

# What a gRPC (HTTP/2-only) server sends first: a SETTINGS frame (length 6, type 4, stream 0) with
# one setting, MAX_CONCURRENT_STREAMS.
H2_SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64"


def _send_to_server_answering(answer: bytes) -> str:
    async def run() -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sender = HttpSender(UpstreamSettings(endpoint=f"http://127.0.0.1:{port}", protocol="http/protobuf"))
        try:
            result = await sender.send("traces", b"")
        finally:
            await sender.close()
            server.close()
            await server.wait_closed()
        assert result.kind == RETRYABLE
        return result.detail

    return asyncio.run(run())


def test_an_http2_settings_frame_is_named_as_a_grpc_server():
    detail = _send_to_server_answering(H2_SETTINGS)
    assert "HTTP/2 SETTINGS frame: a gRPC server answered plain HTTP" in detail, detail
    assert "\\x" not in detail and "b'" not in detail, detail


def test_other_bytes_are_said_not_to_be_http():
    detail = _send_to_server_answering(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert "its answer is not HTTP" in detail, detail
    assert "SETTINGS" not in detail and "b'" not in detail and "\\x" not in detail, detail


def test_an_http_answer_is_not_described_as_one():
    detail = _send_to_server_answering(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
    assert detail.startswith("HTTP 503 from http://127.0.0.1:"), detail
