"""A real proxy process (`python -m labctl proxy serve`) on free ports in a temp dir, for inspection tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from labctl.state import free_port
from tests.proxy.proxy_process import ProxyProcess

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "lab" / "contracts" / "claude-code.yaml"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


class ProxyProc(ProxyProcess):
    """The proxy process of tests/proxy, configured for inspection tests: free ports, the lab contract."""

    def __init__(self, workdir: Path, **sections: Any) -> None:
        self.data_dir = workdir / "data"
        raw: dict[str, Any] = {
            "listen": {
                "otlp_grpc": f"127.0.0.1:{free_port()}",
                "otlp_http": f"127.0.0.1:{free_port()}",
                "admin": f"127.0.0.1:{free_port()}",
            },
            "data_dir": str(self.data_dir),
            "contract": {"path": str(CONTRACT), "mode": "observe"},
        }
        raw.update(sections)
        super().__init__(raw, workdir, env={"COLUMNS": "160"})

    def send(self, signal: str, msg: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(
            f"{self.http}/v1/{signal}",
            data=msg.SerializeToString(),
            headers={**PROTOBUF, **(headers or {})},
            timeout=10,
        )
