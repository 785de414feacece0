"""OTLP request decoding and response encoding for HTTP: protobuf and OTLP/JSON, gzip with bounded inflation.

Every failure is a `CodecError` carrying the HTTP status the OTLP spec asks for and a message that says
what was wrong, so a receiver can answer each bad request clearly and move on.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from labctl.otlp.signals import Signal

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

# gRPC status codes used in google.rpc.Status bodies.
INVALID_ARGUMENT = 3
RESOURCE_EXHAUSTED = 8
UNAUTHENTICATED = 16


class CodecError(Exception):
    """A request the proxy cannot take: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason  # short label for the rejected{reason} counter


def media_type(content_type: str | None) -> str | None:
    """`application/json; charset=utf-8` -> `application/json`; None when it is not one OTLP accepts."""
    if not content_type:
        return None
    mt = content_type.split(";", 1)[0].strip().lower()
    return mt if mt in CONTENT_TYPES else None


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding with the size limit applied to the *inflated* size, never inflating past it.

    A gzip bomb therefore costs at most `limit` bytes of memory before it is refused with 413.
    """
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise CodecError(
            415,
            f"unsupported Content-Encoding {encoding!r}: send gzip (or deflate) or no encoding",
            "unsupported_encoding",
        )
    # gzip framing, or zlib framing for `deflate` (HTTP's meaning of the word).
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    out: list[bytes] = []
    size = 0
    data = body
    while True:  # a gzip stream may hold several members back to back
        d = zlib.decompressobj(wbits)
        try:
            chunk = d.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise CodecError(400, f"body is not valid {enc}: {exc}", "bad_compression") from None
        size += len(chunk)
        if size > limit or d.unconsumed_tail:
            raise CodecError(413, f"request body inflates to more than the {limit}-byte limit", "too_large")
        out.append(chunk)
        if not d.eof:
            raise CodecError(
                400, f"{enc} body is truncated (the stream ends before its trailer)", "bad_compression"
            )
        data = d.unused_data
        if not data:
            break
    return b"".join(out)


_ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"))
_ID_MARKERS = (b'Id"', b'_id"')


def _hex_ids_to_base64(node: Any, path: str) -> None:
    # OTLP/JSON writes ids as hex, protobuf JSON expects base64 for bytes: convert in place.
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise CodecError(
                        400,
                        f"{path}.{key}: {value[:40]!r} is not a hex id "
                        "(OTLP/JSON writes trace and span ids as hex)",
                        "bad_json",
                    ) from None
                node[key] = base64.b64encode(raw).decode()
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, (dict, list)):
                _hex_ids_to_base64(item, f"{path}[{i}]")


def _b64_ids_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            elif isinstance(value, (dict, list)):
                _b64_ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _b64_ids_to_hex(item)


def decode(signal: Signal, body: bytes, media: str) -> Message:
    """Parse an Export*ServiceRequest from protobuf or OTLP/JSON bytes."""
    msg = signal.request_type()
    if media == PROTOBUF:
        try:
            msg.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise CodecError(
                400, f"body is not a valid protobuf {signal.request_type.__name__}: {exc}", "bad_protobuf"
            ) from None
        return msg
    try:
        tree = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CodecError(400, f"body is not valid JSON: {exc}", "bad_json") from None
    except RecursionError:
        raise CodecError(400, "JSON body is nested too deeply", "bad_json") from None
    if not isinstance(tree, dict):
        raise CodecError(400, f"OTLP/JSON body must be an object, got {type(tree).__name__}", "bad_json")
    if any(m in body for m in _ID_MARKERS):
        try:
            _hex_ids_to_base64(tree, "$")
        except RecursionError:
            raise CodecError(400, "JSON body is nested too deeply", "bad_json") from None
    try:
        json_format.ParseDict(tree, msg, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise CodecError(
            400, f"body is not a valid OTLP/JSON {signal.name} request: {exc}", "bad_json"
        ) from None
    return msg


def to_otlp_json(msg: Message) -> dict[str, Any]:
    """A message as OTLP/JSON (hex ids, integer enums, lowerCamelCase)."""
    tree = json_format.MessageToDict(msg, use_integers_for_enums=True)
    _b64_ids_to_hex(tree)
    return tree


def encode(msg: Message, media: str) -> bytes:
    """Encode a response message in the request's content type."""
    if media == JSON:
        return json.dumps(to_otlp_json(msg), separators=(",", ":")).encode()
    return msg.SerializeToString()


def status(code: int, message: str, details: list[Message] | None = None) -> status_pb2.Status:
    st = status_pb2.Status(code=code, message=message)
    for d in details or ():
        st.details.add().Pack(d)
    return st
