"""What a Messages API request must carry, checked with the API's own error messages.

The model stub (server.py) answers a malformed request as the real API would, so a client's mistake
shows the same way in class as at the vendor: `ApiError` carries the status, error type and message.
Also what the stub reads from a request besides the conversation: its session and working directory.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

_WORKDIR_MARK = "Primary working directory: "


class ApiError(Exception):
    """Answered as the API's error shape with this status."""

    def __init__(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message, self.headers = status, error_type, message, headers or {}


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = orjson.loads(raw)  # a late turn's request carries the whole conversation: parse it fast
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_request_error", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "The request body must be a JSON object.")
    return body


def require_key(request: web.Request) -> None:
    if not request.headers.get("x-api-key") and not request.headers.get("authorization"):
        raise ApiError(
            401,
            "authentication_error",
            "x-api-key header is required (the lab's stub accepts any value, e.g. `labctl env`'s)",
        )


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "invalid_request_error", "model: Field required")
    return model


def require_messages(body: dict[str, Any]) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "invalid_request_error", "messages: Field required (a non-empty list)")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant", "system"):
            raise ApiError(
                400, "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'"
            )
        if not isinstance(msg.get("content"), str | list):
            raise ApiError(400, "invalid_request_error", f"messages.{i}.content: Field required")
    return messages


def session_id(request: web.Request, body: dict[str, Any]) -> str:
    header = request.headers.get("x-claude-code-session-id")
    if header:
        return header[:128]
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str):
        try:
            doc = json.loads(user_id)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("session_id"), str):
            return doc["session_id"][:128]
    return "anonymous"


def workdir(body: dict[str, Any]) -> str | None:
    """The client's working directory, from its environment note (system prompt or a system message)."""
    texts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, list):
        texts += [b.get("text", "") for b in system if isinstance(b, dict)]
    for msg in body.get("messages", []):
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [
                b.get("text", "") for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
            ]
    for text in texts:
        if isinstance(text, str) and (at := text.find(_WORKDIR_MARK)) >= 0:
            line = text[at + len(_WORKDIR_MARK) :].split("\n", 1)[0].strip()
            if line.startswith("/"):
                return line
    return None
