"""The one way labctl and its tests open Prometheus's query API (prometheus-api-client)."""

from __future__ import annotations

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry


def client(url: str, timeout: float | None = None) -> PrometheusConnect:
    # Retries OFF: the client's default (retries on 5xx) would hide exactly the faults the lab injects,
    # and a missing series must show as missing now, not after hidden retries.
    return PrometheusConnect(url=url, disable_ssl=True, retry=Retry(total=0), timeout=timeout)
