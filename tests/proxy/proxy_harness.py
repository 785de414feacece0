"""Run a real ProxyServer on free ports in a background event loop, for tests that use sync clients."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from labctl.proxy import config as proxy_config
from labctl.proxy.server import ProxyServer
from labctl.state import free_port

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "lab" / "contracts" / "claude-code.yaml"


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_config(data_dir: Path, **sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "listen": {
            "otlp_grpc": f"127.0.0.1:{free_port()}",
            "otlp_http": f"127.0.0.1:{free_port()}",
            "admin": f"127.0.0.1:{free_port()}",
        },
        "data_dir": str(data_dir),
        "contract": {"path": str(CONTRACT), "mode": "observe"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


class RunningProxy:
    """A ProxyServer on its own loop thread. `call(coro)` runs a coroutine on that loop."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.cfg = proxy_config.from_dict(raw, REPO, env={})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = ProxyServer(self.cfg)
        try:
            self.call(self.server.start())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            raise

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.server.ports['otlp_http']}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.server.ports['otlp_grpc']}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.server.ports['admin']}"

    def stats(self) -> dict[str, Any]:
        # With a token configured the admin API demands it too (labctl/proxy/guard.py).
        token = self.server.cfg.auth_token
        request = urllib.request.Request(
            self.admin + "/api/stats", headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()
