"""The real lab Collector (otelcol-lab with collector-configs/base.yaml) on free ports, for proxy tests."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from proxy_harness import REPO, free_port

from labctl.install import resolve_binary


class Collector:
    def __init__(self, workdir: Path, auth_token: str = "") -> None:
        self.binary = resolve_binary("otelcol-lab")
        self.workdir = workdir
        self.grpc_port, self.http_port = free_port(), free_port()
        self.prom_port, self.internal_port, self.health_port = free_port(), free_port(), free_port()
        self.auth_token = auth_token
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "collector.log"

    def start(self) -> Collector:
        configs = ["--config", str(REPO / "collector-configs" / "base.yaml")]
        env = {**os.environ,
               "LAB_COLLECTOR_OTLP_GRPC_LISTEN": f"127.0.0.1:{self.grpc_port}",
               "LAB_COLLECTOR_OTLP_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
               "LAB_COLLECTOR_PROM_EXPORTER_LISTEN": f"127.0.0.1:{self.prom_port}",
               "LAB_COLLECTOR_INTERNAL_HOST": "127.0.0.1",
               "LAB_COLLECTOR_INTERNAL_PORT": str(self.internal_port),
               "LAB_COLLECTOR_HEALTH_LISTEN": f"127.0.0.1:{self.health_port}",
               "LAB_COLLECTOR_DATA_DIR": str(self.workdir)}
        if self.auth_token:
            configs += ["--config", str(REPO / "collector-configs" / "auth.yaml")]
            env["LAB_COLLECTOR_AUTH_TOKEN"] = self.auth_token
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([str(self.binary), *configs], stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("collector not healthy in 60s")

    def endpoint(self, protocol: str) -> str:
        return f"http://127.0.0.1:{self.grpc_port if protocol == 'grpc' else self.http_port}"

    def _scrape(self, port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def series_value(self, metric: str, label: str) -> float:
        """Sum of `metric` series carrying `label` (e.g. session_id="x") on the prometheus exporter."""
        total = 0.0
        for line in self._scrape(self.prom_port).splitlines():
            if line.startswith(metric + "{") and label in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def internal(self, metric: str) -> float:
        total = 0.0
        for line in self._scrape(self.internal_port).splitlines():
            if re.match(rf"{metric}(\{{| )", line):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
