"""OTLP/gRPC receiver (grpc.aio): the metrics, logs and trace Export services on one server.

Requests arrive as raw bytes and are parsed here so a bad body is an INVALID_ARGUMENT with a clear
message. grpc itself enforces the (inflated) size limit with RESOURCE_EXHAUSTED. A full spool answers
RESOURCE_EXHAUSTED *with* RetryInfo in grpc-status-details-bin, the only form OTLP clients retry.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2

from labctl.otlp import codec
from labctl.otlp.signals import SIGNALS, Signal, response
from labctl.proxy.ingest import Busy, Ingest, safe_headers
from labctl.proxy.stats import Stats


class GrpcReceiver:
    def __init__(self, ingest: Ingest, stats: Stats, *, token: str) -> None:
        self.ingest = ingest
        self.stats = stats
        self._safe_headers: dict[tuple[Any, ...], dict[str, str]] = {}
        self.set_token(token)

    def set_token(self, token: str) -> None:
        """The bearer token clients must send (empty: none); proxy.yaml reloads change it live."""
        self._expected_auth = f"Bearer {token}".encode() if token else b""

    def handlers(self) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
        """service -> {"Export": handler}, bytes in, bytes out. The server registers them ahead
        (`add_registered_method_handlers`): grpc then finds a call's handler without asking a generic
        handler in Python on every request."""
        return {
            sig.grpc_service: {"Export": grpc.unary_unary_rpc_method_handler(self._handler(sig))}
            for sig in SIGNALS.values()
        }

    def _handler(self, sig: Signal) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return await self.export(sig, request, context)

        return export

    async def export(self, sig: Signal, body: bytes, context: Any) -> bytes:
        """The in-process server's call (grpc.aio); the front process relays to `answer` instead."""
        code, message, reply, trailing = self.answer(
            sig, body, context.invocation_metadata() or (), context.peer() or ""
        )
        if code:
            await context.abort(getattr(grpc.StatusCode, code), message, trailing_metadata=trailing)
        return reply

    def answer(
        self, sig: Signal, body: bytes, metadata: Any, peer: str
    ) -> tuple[str, str, bytes, tuple[tuple[str, bytes], ...]]:
        """One Export call: (status code name, "" for OK; its message; the reply; trailing metadata)."""
        if self._expected_auth:
            got = next((str(v) for k, v in metadata if k == "authorization"), "").encode()
            if not hmac.compare_digest(got, self._expected_auth):
                self.stats.requests[(sig.name, "unauthenticated")] += 1
                return (
                    "UNAUTHENTICATED",
                    "missing or wrong bearer token: send the metadata authorization: Bearer <token>",
                    b"",
                    (),
                )
        msg = sig.request_type()
        try:
            msg.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            self.stats.requests[(sig.name, "bad_protobuf")] += 1
            return (
                "INVALID_ARGUMENT",
                f"body is not a valid protobuf {sig.request_type.__name__}: {exc}",
                b"",
                (),
            )
        meta = {
            "protocol": "grpc",
            "content_type": "application/grpc",
            "peer": peer,
            "bytes": len(body),
            "headers": self._headers(metadata),
        }
        try:
            answer = self.ingest.handle(sig, msg, body, meta)
        except Busy as busy:
            info = error_details_pb2.RetryInfo()
            info.retry_delay.FromNanoseconds(int(busy.retry_after * 1e9))
            st = codec.status(codec.RESOURCE_EXHAUSTED, busy.message, [info])
            return (
                "RESOURCE_EXHAUSTED",
                busy.message,
                b"",
                (("grpc-status-details-bin", st.SerializeToString()),),
            )
        if not answer.rejected and not answer.message:
            return "", "", b"", ()  # the empty Export*ServiceResponse: full success
        return "", "", response(sig, answer.rejected, answer.message).SerializeToString(), ()

    def _headers(self, metadata: Any) -> dict[str, str]:
        """The request's metadata made safe for the inspection record. A client sends the same metadata
        with every export: the last few are remembered (the records never change the dict they get)."""
        key = tuple(metadata)
        safe = self._safe_headers.get(key)
        if safe is None:
            if len(self._safe_headers) >= 64:
                self._safe_headers.clear()
            safe = self._safe_headers[key] = safe_headers(dict(metadata))
        return safe
