"""Senders to the next hop (OTLP gRPC or HTTP/protobuf) and how their answers are classified.

Classification follows the OTLP spec: HTTP 429/502/503/504 and gRPC CANCELLED, DEADLINE_EXCEEDED,
ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS (RESOURCE_EXHAUSTED only with RetryInfo) are retryable;
network errors too. Authentication failures (HTTP 401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED) are
their own kind: the forwarder *holds* the data and keeps trying, because a fixed token should not find
the data gone (the Collector's exporter drops it). Everything else is permanent.
"""

from __future__ import annotations

import ast
import base64
import email.utils
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from labctl.otlp.signals import SIGNALS
from labctl.proxy.config import UpstreamSettings

OK, RETRYABLE, AUTH, PERMANENT = "ok", "retryable", "auth", "permanent"

_RETRYABLE_HTTP = {429, 502, 503, 504}
_AUTH_HTTP = {401, 403}
_RETRYABLE_GRPC = {
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}
_AUTH_GRPC = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


@dataclass(frozen=True)
class Result:
    kind: str  # ok | retryable | auth | permanent
    detail: str = ""  # what the upstream said, for logs and /api/stats
    reason: str = ""  # short label: http_503, grpc_unavailable, connect, ...
    retry_after: float | None = None  # the upstream's own hint, seconds
    rejected: int = 0  # partial success: items the upstream refused
    rejected_message: str = ""


def safe_endpoint(endpoint: str) -> str:
    """The endpoint without any user:password part, for display."""
    p = urllib.parse.urlsplit(endpoint)
    if p.username or p.password:
        host = p.hostname or ""
        netloc = f"{host}:{p.port}" if p.port else host
        return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
    return endpoint


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _partial(signal: str, body: bytes) -> tuple[int, str]:
    sig = SIGNALS[signal]
    resp = sig.response_type()
    try:
        resp.ParseFromString(body)
    except DecodeError:
        return 0, ""
    if not resp.HasField("partial_success"):
        return 0, ""
    ps = resp.partial_success
    return int(getattr(ps, sig.rejected_field)), ps.error_message


class HttpSender:
    def __init__(self, settings: UpstreamSettings) -> None:
        p = urllib.parse.urlsplit(settings.endpoint)
        self.headers = {**settings.headers, "content-type": "application/x-protobuf"}
        if p.username is not None and "authorization" not in self.headers:
            # user:password in the URL becomes Basic auth; the URL itself is used without it.
            raw = f"{urllib.parse.unquote(p.username)}:{urllib.parse.unquote(p.password or '')}".encode()
            self.headers["authorization"] = "Basic " + base64.b64encode(raw).decode()
        self.base = safe_endpoint(settings.endpoint).rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, signal: str, body: bytes) -> Result:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, auto_decompress=True)
        url = self.base + SIGNALS[signal].http_path
        try:
            async with self._session.post(url, data=body, headers=self.headers) as resp:
                payload = await resp.read()
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Result(RETRYABLE, f"cannot reach {url}: {describe_connect_error(exc)}", "connect")
        if 200 <= status < 300:
            rejected, message = _partial(signal, payload)
            return Result(OK, rejected=rejected, rejected_message=message)
        detail = f"HTTP {status} from {url}: {_status_message(payload)}"
        if status in _AUTH_HTTP:
            return Result(AUTH, detail, f"http_{status}")
        if status in _RETRYABLE_HTTP:
            return Result(RETRYABLE, detail, f"http_{status}", retry_after)
        return Result(PERMANENT, detail, f"http_{status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


# HTTP/2 frame header: 3 bytes length, 1 byte type (0x04 SETTINGS), 1 byte flags, 4 bytes stream id 0.
_H2_SETTINGS = re.compile(rb"\A[\x00-\xff]{3}\x04[\x00\x01]\x00\x00\x00\x00", re.DOTALL)


def describe_connect_error(exc: BaseException) -> str:
    """A failed request in words a student can act on.

    aiohttp reports an answer that is not HTTP/1.1 as "Bad status line" with the raw bytes' Python
    repr (b'\\x00\\x00\\x06\\x04...'): say what those bytes were instead of showing them.
    """
    message = str(getattr(exc, "message", "") or exc)
    if not isinstance(exc, aiohttp.ClientResponseError) or "Bad status line" not in message:
        return f"{type(exc).__name__}: {exc}"
    first = b""
    found = re.search(r"b'(?:[^'\\]|\\.)*'", message)  # repr() quotes with ' unless the bytes hold one
    if found:
        try:
            first = ast.literal_eval(found.group(0))
        except (ValueError, SyntaxError):
            first = b""
    if _H2_SETTINGS.match(first):
        return "it answered with an HTTP/2 SETTINGS frame: a gRPC server answered plain HTTP"
    return "its answer is not HTTP (no HTTP/1.1 status line)"


def _status_message(payload: bytes) -> str:
    st = status_pb2.Status()
    try:
        st.ParseFromString(payload)
        if st.message:
            return st.message
    except DecodeError:
        pass
    return payload[:200].decode("utf-8", "replace").strip() or "(empty body)"


def _retry_info(trailers: Any) -> float | None:
    for key, value in trailers or ():
        if key == "grpc-status-details-bin":
            st = status_pb2.Status()
            try:
                st.ParseFromString(value)
            except DecodeError:
                return None
            for detail in st.details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


class GrpcSender:
    def __init__(self, settings: UpstreamSettings) -> None:
        p = urllib.parse.urlsplit(settings.endpoint)
        secure = p.scheme == "https"
        target = f"{p.hostname}:{p.port or (443 if secure else 4317)}"
        # The forwarder paces its own retries (backoff, Retry-After): the channel must not add its own
        # reconnect backoff on top, which grows to two minutes by default after a long outage.
        options = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", 16 << 20),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        self.channel = (
            grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
            if secure
            else grpc.aio.insecure_channel(target, options=options)
        )
        self.target = target
        self.metadata = tuple(settings.headers.items())
        self.timeout = settings.timeout
        # Bytes in, bytes out: the spool already holds serialized requests.
        self._calls: dict[str, Any] = {
            name: self.channel.unary_unary(sig.grpc_method) for name, sig in SIGNALS.items()
        }

    async def send(self, signal: str, body: bytes) -> Result:
        try:
            payload = await self._calls[signal](body, metadata=self.metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            detail = f"gRPC {code.name} from {self.target}: {exc.details()}"
            reason = f"grpc_{code.name.lower()}"
            if code in _AUTH_GRPC:
                return Result(AUTH, detail, reason)
            if code in _RETRYABLE_GRPC:
                return Result(RETRYABLE, detail, reason, _retry_info(exc.trailing_metadata()))
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                hint = _retry_info(exc.trailing_metadata())
                if hint is not None:
                    return Result(RETRYABLE, detail, reason, hint)
            return Result(PERMANENT, detail, reason)
        rejected, message = _partial(signal, payload)
        return Result(OK, rejected=rejected, rejected_message=message)

    async def close(self) -> None:
        await self.channel.close()


def make_sender(settings: UpstreamSettings) -> HttpSender | GrpcSender:
    return GrpcSender(settings) if settings.protocol == "grpc" else HttpSender(settings)
