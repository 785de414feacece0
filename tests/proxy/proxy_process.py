"""Run the proxy as its own OS process (`python -m labctl proxy serve`), so a test can SIGKILL it."""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from labctl.matrix.receivers import Process, wait_http

REPO = Path(__file__).resolve().parents[2]


class ProxyProcess(Process):
    def __init__(self, raw_config: dict[str, Any], workdir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__("proxy", workdir)
        self.extra_env = env or {}  # e.g. a terminal width for the proxy's console view
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "proxy.yaml"
        self.config_path.write_text(yaml.safe_dump(raw_config))
        self.raw = raw_config

    @property
    def admin(self) -> str:
        return "http://" + self.raw["listen"]["admin"]

    @property
    def http(self) -> str:
        return "http://" + self.raw["listen"]["otlp_http"]

    def start(self) -> ProxyProcess:
        self.spawn(
            [sys.executable, "-m", "labctl", "proxy", "serve", "--config", str(self.config_path)],
            {"PYTHONPATH": str(REPO), **self.extra_env},
            cwd=REPO,
        )
        wait_http(self.admin + "/readyz", 30, self.proc, self.log)
        return self

    def admin_request(self, path: str) -> urllib.request.Request:
        """A request to the admin API, with the configured token (the admin plane demands it too)."""
        token = (self.raw.get("auth") or {}).get("bearer_token")
        return urllib.request.Request(
            self.admin + path, headers={"Authorization": f"Bearer {token}"} if token else {}
        )

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.admin_request("/api/stats"), timeout=5) as resp:
            return json.loads(resp.read())

    def wait_log(self, timeout: float = 30) -> None:
        """Until the JSON Lines log holds every payload received so far (its writer is a child process)."""
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(self.admin_request("/api/overview"), timeout=5) as resp:
                ov = json.loads(resp.read())
            if ov["log"]["written_through"] >= ov["last_seq"]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the JSONL log is still behind after {timeout}s: {ov['log']}")
            time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
