"""Runtimes run the lab model: `native` (local processes) and `docker` (compose via python-on-whales)."""

from labctl.runtimes.base import Runtime, ServiceStatus, get_runtime

__all__ = ["Runtime", "ServiceStatus", "get_runtime"]
