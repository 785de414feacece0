"""Run the proxy as its own OS process (`python -m labctl proxy serve`), so a test can SIGKILL it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from proxy_harness import REPO


class ProxyProcess:
    def __init__(self, raw_config: dict[str, Any], workdir: Path) -> None:
        self.config_path = workdir / "proxy.yaml"
        self.config_path.write_text(yaml.safe_dump(raw_config))
        self.log_path = workdir / "proxy.log"
        self.raw = raw_config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> str:
        return "http://" + self.raw["listen"]["admin"]

    @property
    def http(self) -> str:
        return "http://" + self.raw["listen"]["otlp_http"]

    def start(self) -> ProxyProcess:
        cmd = [sys.executable, "-m", "labctl", "proxy", "serve", "--config", str(self.config_path)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"proxy exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.admin + "/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"proxy not ready in 30s:\n{self.log()}")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.admin + "/api/stats", timeout=5) as resp:
            return json.loads(resp.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
