"""The model stub served in-process on a free port (a real HTTP server in a thread), and an SSE reader."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from labctl.modelstub.scenario import load_dir
from labctl.modelstub.server import ModelStub
from labctl.state import free_port

REPO = Path(__file__).resolve().parents[2]
LAB_SCENARIOS = REPO / "lab" / "scenarios"
KEY = {"x-api-key": "sk-ant-lab-model-stub-not-a-real-key", "anthropic-version": "2023-06-01"}


class RunningStub:
    """`with RunningStub(dir) as stub:` serves that directory's scenarios at stub.url until the block ends."""

    def __init__(self, scenarios: Path, default: str | None = None, log: Path | None = None) -> None:
        loaded = load_dir(scenarios)
        self.stub = ModelStub(loaded, default or next(iter(loaded)), log)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.stub.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __exit__(self, *_exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream body; every data line must be JSON."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def request_body(
    prompt: str = "hi",
    assistant_turns: int = 0,
    *,
    tools: bool = True,
    stream: bool = True,
    model: str = "claude-opus-5-5",
    workdir: str = "/tmp/work",
) -> dict[str, Any]:
    """A Messages request shaped like the real client's: the working directory note, earlier turns, tools."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
    for i in range(assistant_turns):
        messages += [
            {"role": "assistant", "content": [{"type": "text", "text": f"turn {i}"}]},
            {"role": "user", "content": [{"type": "text", "text": "go on"}]},
        ]
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 1024,
        "stream": stream,
        "messages": messages,
        "system": [{"type": "text", "text": f"# Environment\n - Primary working directory: {workdir}\n"}],
    }
    if tools:
        body["tools"] = [{"name": "Write", "input_schema": {"type": "object"}}]
    return body
