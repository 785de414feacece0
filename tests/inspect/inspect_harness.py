"""A real proxy process (`python -m labctl proxy serve`) on free ports in a temp dir, for inspection tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from labctl.state import free_port

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "lab" / "contracts" / "claude-code.yaml"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


class ProxyProc:
    def __init__(self, workdir: Path, **sections: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.raw: dict[str, Any] = {
            "listen": {"otlp_grpc": f"127.0.0.1:{free_port()}", "otlp_http": f"127.0.0.1:{free_port()}",
                       "admin": f"127.0.0.1:{free_port()}"},
            "data_dir": str(self.data_dir),
            "contract": {"path": str(CONTRACT), "mode": "observe"},
        }
        self.raw.update(sections)
        self.config_path = workdir / "proxy.yaml"
        self.config_path.write_text(yaml.safe_dump(self.raw))
        self.log_path = workdir / "proxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> str:
        return "http://" + self.raw["listen"]["admin"]

    @property
    def http(self) -> str:
        return "http://" + self.raw["listen"]["otlp_http"]

    def start(self) -> ProxyProc:
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "labctl", "proxy", "serve", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"proxy exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.admin + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"proxy not ready in 30s:\n{self.log()}")

    def send(self, signal: str, msg: Any, headers: dict[str, str] | None = None) -> requests.Response:
        r = requests.post(f"{self.http}/v1/{signal}", data=msg.SerializeToString(),
                          headers={**PROTOBUF, **(headers or {})}, timeout=10)
        return r

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
