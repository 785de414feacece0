"""OTLP/HTTP receiver (aiohttp): POST /v1/metrics, /v1/logs, /v1/traces in protobuf or OTLP/JSON.

Answers exactly as the OTLP spec says: 200 with an Export*ServiceResponse (partial_success when the
contract rejected items), 400 + google.rpc.Status for undecodable bodies, 401 without the configured
token, 413 above the size limit (raw or inflated), 415 for other content types, 429 + Retry-After when
the spool is full. The answer is encoded like the request (protobuf or JSON).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from labctl.otlp import codec
from labctl.otlp.codec import PROTOBUF, CodecError
from labctl.otlp.signals import SIGNALS, Signal, response
from labctl.proxy.ingest import Busy, Ingest, safe_headers
from labctl.proxy.stats import Stats

log = logging.getLogger("labctl.proxy.http")


def _reply(status: int, msg: Message, media: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=codec.encode(msg, media), content_type=media, headers=headers)


def _error(
    status: int,
    code: int,
    message: str,
    media: str,
    headers: dict[str, str] | None = None,
    details: list[Message] | None = None,
) -> web.Response:
    return _reply(status, codec.status(code, message, details), media, headers)


class HttpReceiver:
    def __init__(self, ingest: Ingest, stats: Stats, *, max_bytes: int, token: str) -> None:
        self.ingest = ingest
        self.stats = stats
        self.max_bytes = max_bytes
        self._safe_headers: dict[tuple[tuple[bytes, bytes], ...], dict[str, str]] = {}
        self.set_token(token)

    def set_token(self, token: str) -> None:
        """The bearer token clients must send (empty: none); proxy.yaml reloads change it live."""
        self._expected_auth = f"Bearer {token}".encode() if token else b""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_bytes + 1)
        for sig in SIGNALS.values():
            app.router.add_post(sig.http_path, self._handler(sig))
        return app

    def _handler(self, sig: Signal) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.export(sig, request)

        return handle

    async def _read(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > self.max_bytes:
            raise CodecError(
                413,
                f"request body of {request.content_length} bytes is above the {self.max_bytes}-byte limit",
                "too_large",
            )
        chunks: list[bytes] = []
        size = 0
        # Chunked bodies (the JS exporter sends them) have no Content-Length: count while reading.
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > self.max_bytes:
                raise CodecError(413, f"request body is above the {self.max_bytes}-byte limit", "too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def export(self, sig: Signal, request: web.Request) -> web.StreamResponse:
        media = codec.media_type(request.headers.get("Content-Type"))
        reply_media = media or codec.JSON
        if self._expected_auth:
            got = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(got, self._expected_auth):
                self.stats.requests[(sig.name, "unauthenticated")] += 1
                return _error(
                    401,
                    codec.UNAUTHENTICATED,
                    # A literal space: Claude Code sends OTEL_EXPORTER_OTLP_HEADERS as written over HTTP,
                    # so a `%20` it was told to use arrives undecoded (lab/docs/contracts.md, "Headers").
                    "missing or wrong bearer token: send the header Authorization: Bearer <token> "
                    "(OTEL_EXPORTER_OTLP_HEADERS='Authorization=Bearer <token>', a space, not %20)",
                    reply_media,
                    {"WWW-Authenticate": 'Bearer realm="labctl-proxy"'},
                )
        if media is None:
            self.stats.requests[(sig.name, "unsupported_media_type")] += 1
            shown = (request.headers.get("Content-Type") or "none")[:80]
            return _error(
                415,
                codec.INVALID_ARGUMENT,
                f"unsupported Content-Type {shown!r}: OTLP/HTTP takes application/x-protobuf or "
                "application/json",
                reply_media,
            )
        try:
            try:
                body = await self._read(request)
            except (ConnectionError, aiohttp.ClientPayloadError, HttpProcessingError):
                # The client went away mid-body: nothing was acknowledged, nobody to answer.
                self.stats.requests[(sig.name, "client_disconnected")] += 1
                raise web.HTTPBadRequest(text="request body ended early") from None
            body = codec.inflate(body, request.headers.get("Content-Encoding"), self.max_bytes)
            msg = codec.decode(sig, body, media)
        except CodecError as exc:
            self.stats.requests[(sig.name, exc.reason)] += 1
            return _error(exc.status, codec.INVALID_ARGUMENT, exc.message, media)
        meta = {
            "protocol": "http/protobuf" if media == PROTOBUF else "http/json",
            "content_type": media,
            "peer": request.remote or "",
            "bytes": len(body),
            "headers": self._headers(request),
        }
        try:
            answer = self.ingest.handle(sig, msg, body if media == PROTOBUF else None, meta)
        except Busy as busy:
            info = error_details_pb2.RetryInfo()
            info.retry_delay.FromNanoseconds(int(busy.retry_after * 1e9))
            return _error(
                429,
                codec.RESOURCE_EXHAUSTED,
                busy.message,
                media,
                {"Retry-After": str(max(1, round(busy.retry_after)))},
                [info],
            )
        return _reply(200, response(sig, answer.rejected, answer.message), media)

    def _headers(self, request: web.Request) -> dict[str, str]:
        """The request's headers made safe for the inspection record. A client sends the same headers
        with every export: the last few are remembered by their raw bytes (the records never change the
        dict they get)."""
        key = request.raw_headers
        safe = self._safe_headers.get(key)
        if safe is None:
            if len(self._safe_headers) >= 64:
                self._safe_headers.clear()
            safe = self._safe_headers[key] = safe_headers(request.headers)
        return safe
