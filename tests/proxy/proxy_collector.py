"""The real lab Collector (otelcol-lab with collector-configs/base.yaml) on free ports, for proxy tests."""

from __future__ import annotations

from pathlib import Path

from labctl.matrix import receivers


class Collector(receivers.Collector):
    def __init__(self, workdir: Path, auth_token: str = "") -> None:
        super().__init__(workdir, auth_token=auth_token or None)

    def start(self, timeout_s: float = 60) -> Collector:
        super().start(timeout_s)
        return self

    def endpoint(self, protocol: str) -> str:
        return f"http://127.0.0.1:{self.grpc_port if protocol == 'grpc' else self.http_port}"

    def series_value(self, metric: str, **labels: str) -> float:
        """Sum of `metric` series carrying `labels` (e.g. session_id="x") on the prometheus exporter."""
        return sum(
            s.value
            for s in self.exported()
            if s.name == metric and all(s.labels.get(k) == want for k, want in labels.items())
        )

    def internal_total(self, metric: str) -> float:
        return sum(s.value for s in self.internal() if s.name == metric)
