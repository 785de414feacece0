"""What the stub sends back for one scripted turn: the Messages API's JSON message or its SSE event stream.

Pure functions over a Turn (no I/O), so the wire shapes are unit-tested byte for byte and the server
only decides *which* answer to send and when.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from labctl.modelstub.scenario import ERROR_TYPES, Fault, ToolCall, Turn

# Tools whose `file_path` must be absolute for the client; scenarios write paths relative to the workdir.
_PATH_TOOLS = {"Write", "Edit", "Read", "NotebookEdit", "MultiEdit"}
_TEXT_CHUNK = 24  # characters per text_delta: a stream, not one blob
_JSON_CHUNK = 32  # characters per input_json_delta


def stable_id(prefix: str, *parts: object, length: int = 24) -> str:
    """A deterministic id (`msg_…`, `toolu_…`, `req_…`) from the seed, session, turn and attempt."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{prefix}_{digest[:length]}"


@dataclass(frozen=True)
class AnswerIds:
    message: str
    tools: tuple[str, ...]


def ids_for(seed: int, scenario: str, session: str, turn: int, tools: int) -> AnswerIds:
    return AnswerIds(
        message=stable_id("msg", seed, scenario, session, turn),
        tools=tuple(stable_id("toolu", seed, scenario, session, turn, i) for i in range(tools)),
    )


def tool_input(call: ToolCall, workdir: str | None) -> dict[str, Any]:
    """The tool's input as the client needs it: relative file paths resolved against its working dir."""
    data = dict(call.input)
    path = data.get("file_path") if call.name in _PATH_TOOLS else None
    if isinstance(path, str) and workdir and not path.startswith("/"):
        data["file_path"] = f"{workdir.rstrip('/')}/{path}"
    return data


def content_blocks(turn: Turn, ids: AnswerIds, workdir: str | None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if turn.text:
        blocks.append({"type": "text", "text": turn.text})
    for call, tool_id in zip(turn.tools, ids.tools, strict=True):
        blocks.append(
            {"type": "tool_use", "id": tool_id, "name": call.name, "input": tool_input(call, workdir)}
        )
    return blocks


def message(turn: Turn, ids: AnswerIds, model: str, workdir: str | None) -> dict[str, Any]:
    """The non-streaming answer (`stream: false`)."""
    return {
        "id": ids.message,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(turn, ids, workdir),
        "stop_reason": turn.final_stop_reason,
        "stop_sequence": None,
        "usage": turn.usage.as_api(),
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def message_start(turn: Turn, ids: AnswerIds, model: str) -> bytes:
    usage = turn.usage.as_api()
    usage["output_tokens"] = 1  # as the API does: the final count comes with message_delta
    return sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": ids.message,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        },
    )


def stream_body(turn: Turn, ids: AnswerIds, workdir: str | None) -> Iterator[bytes]:
    """Everything after message_start: ping, content blocks with their deltas, message_delta, message_stop."""
    yield sse("ping", {"type": "ping"})
    for index, block in enumerate(content_blocks(turn, ids, workdir)):
        if block["type"] == "text":
            yield sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in _chunks(block["text"], _TEXT_CHUNK):
                yield sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield sse(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
            for piece in _chunks(json.dumps(block["input"], separators=(",", ":")), _JSON_CHUNK):
                yield sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
    usage = turn.usage.as_api()
    usage.pop("service_tier")
    yield sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": turn.final_stop_reason, "stop_sequence": None},
            "usage": usage,
        },
    )
    yield sse("message_stop", {"type": "message_stop"})


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """The API's error shape: {"type": "error", "error": {"type", "message"}, "request_id"}."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def fault_body(fault: Fault, request_id: str) -> dict[str, Any]:
    default = {
        429: "Number of request tokens has exceeded your per-minute rate limit (lab model stub, scripted)",
        529: "Overloaded (lab model stub, scripted)",
        500: "Internal server error (lab model stub, scripted)",
    }
    return error_body(
        fault.error_type,
        fault.message or default.get(fault.status, f"{ERROR_TYPES[fault.status]} (lab model stub, scripted)"),
        request_id,
    )
