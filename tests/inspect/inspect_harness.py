"""A real proxy process (`python -m labctl proxy serve`) on free ports in a temp dir, for inspection tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import requests
import yaml

from labctl.matrix.receivers import Process, wait_http
from labctl.state import free_port

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "lab" / "contracts" / "claude-code.yaml"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


class ProxyProc(Process):
    def __init__(self, workdir: Path, **sections: Any) -> None:
        super().__init__("proxy", workdir)
        workdir.mkdir(parents=True, exist_ok=True)
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

    @property
    def admin(self) -> str:
        return "http://" + self.raw["listen"]["admin"]

    @property
    def http(self) -> str:
        return "http://" + self.raw["listen"]["otlp_http"]

    def start(self) -> ProxyProc:
        self.spawn([sys.executable, "-m", "labctl", "proxy", "serve", "--config", str(self.config_path)],
                   {"PYTHONPATH": str(REPO), "COLUMNS": "160"}, cwd=REPO)
        wait_http(self.admin + "/readyz", 30, self.proc, self.log)
        return self

    def send(self, signal: str, msg: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(f"{self.http}/v1/{signal}", data=msg.SerializeToString(),
                             headers={**PROTOBUF, **(headers or {})}, timeout=10)
