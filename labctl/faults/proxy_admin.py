"""Faults on the proxy → Collector hop change the running proxy's upstream through its admin API
(`PUT /api/upstream`) instead of restarting it with a new env: its counters, inspector history and spool
stay, and `DELETE /api/upstream` puts back exactly the upstream from its configuration."""

from __future__ import annotations

from typing import Any

from labctl.errors import LabError
from labctl.faults.base import FaultContext
from labctl.lazy import requests


def _api(ctx: FaultContext) -> str:
    return ctx.lab.url("proxy", "admin") + "/api/upstream"


def set_upstream(ctx: FaultContext, **change: str) -> dict[str, Any]:
    """Retarget the running proxy; returns the record heal needs (what was asked for)."""
    try:
        resp = requests.put(
            _api(ctx),
            json=change,
            timeout=5,
            headers=ctx.lab.admin_headers(),
            params={"quiet": "1"} if ctx.quiet else None,
        )
    except requests.RequestException as exc:
        raise LabError(
            f"cannot reach the proxy's admin API at {_api(ctx)}: {type(exc).__name__}",
            "is the proxy running? `labctl status`",
        ) from None
    if resp.status_code != 200:
        raise LabError(
            f"the proxy refused the upstream change ({resp.status_code}): {_error(resp)}",
            "see `labctl logs proxy`",
        )
    return {
        "asked": {k: v for k, v in change.items() if k != "headers"},
        "header_names": resp.json().get("header_names", []),
        "answer": resp.json(),
    }


def reset_upstream(ctx: FaultContext) -> None:
    """Back to the configured upstream (and retry now). A proxy that is not running has forgotten the
    change already: its next start uses its configuration."""
    try:
        resp = requests.delete(
            _api(ctx),
            timeout=5,
            headers=ctx.lab.admin_headers(),
            params={"quiet": "1"} if ctx.quiet else None,
        )
    except requests.RequestException:
        if ctx.runtime.is_running("proxy"):
            raise LabError(
                f"cannot reach the proxy's admin API at {_api(ctx)} to restore its upstream",
                "run `labctl heal` again, or restart the proxy (`labctl up`)",
            ) from None
        return
    if resp.status_code != 200:
        raise LabError(
            f"the proxy did not restore its upstream ({resp.status_code}): {_error(resp)}",
            "restart the proxy (`labctl up`) to load its configuration again",
        )


def retry_now(ctx: FaultContext) -> None:
    """End the proxy's retry backoff (an empty PUT): used after the upstream is back."""
    try:
        requests.put(_api(ctx), json={}, timeout=5, headers=ctx.lab.admin_headers())
    except requests.RequestException:
        ...  # best effort: without it the proxy retries at the end of its backoff anyway


def current(ctx: FaultContext) -> dict[str, Any]:
    """The proxy's upstream as it reports it (/api/stats)."""
    resp = requests.get(
        ctx.lab.url("proxy", "admin") + "/api/stats", timeout=3, headers=ctx.lab.admin_headers()
    )
    resp.raise_for_status()
    return dict(resp.json().get("upstream") or {})


def _error(resp: requests.Response) -> str:
    try:
        return str(resp.json().get("error", resp.text[:200]))
    except ValueError:
        return resp.text[:200]


def configured_upstream(ctx: FaultContext) -> str:
    """The proxy's upstream URL from its configuration (lab.yaml env + overrides); LabError when the
    stage gives it none."""
    upstream = ctx.effective_env("proxy").get("LAB_PROXY_UPSTREAM", "")
    if not upstream:
        raise LabError(
            "the proxy has no upstream in this module (nothing to change)",
            "break the proxy↔collector hop from module-2 on: `labctl up module-2`",
        )
    return upstream
