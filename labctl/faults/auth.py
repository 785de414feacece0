"""`auth`: the Collector's OTLP receivers require a bearer token; the proxy sends a wrong one or none.

The overlay collector-configs/faults/auth.yaml switches bearertokenauth on (token from env); the proxy's
upstream headers carry the wrong token (or lose it), set on the running proxy through its admin API.
The Collector answers gRPC UNAUTHENTICATED / HTTP 401; the proxy keeps the data (it does not drop on 401) until the token is right again.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from labctl.errors import LabError
from labctl.faults import proxy_admin
from labctl.faults.base import FaultContext, Option, run_all, wait_until
from labctl.faults.records import AuthFault

if TYPE_CHECKING:
    import grpc

OPTIONS = (
    Option("token", "what the proxy sends", choices=("wrong", "missing"), default="wrong", positional=True),
)
TOKEN_ENV = "LAB_FAULT_AUTH_TOKEN"


def overlay(ctx: FaultContext) -> Any:
    return ctx.model.root / "collector-configs" / "faults" / "auth.yaml"


def apply(ctx: FaultContext, opts: dict[str, Any]) -> AuthFault:
    upstream = proxy_admin.configured_upstream(ctx)
    token = secrets.token_hex(12)
    collector = ctx.add_overrides("collector", env={TOKEN_ENV: token}, configs=[overlay(ctx)])
    try:
        headers = ctx.effective_env("proxy").get("LAB_PROXY_UPSTREAM_HEADERS", "")
        kept = [h for h in headers.split(",") if h and not h.lower().startswith("authorization=")]
        if opts["token"] == "wrong":
            kept.append(f"authorization=Bearer%20wrong-{secrets.token_hex(4)}")  # percent-encoded, OTEL style
        # The running proxy gets the new headers through its admin API (no restart).
        change = proxy_admin.set_upstream(ctx, headers=",".join(kept))
    except LabError:
        ctx.remove_overrides(collector)
        raise
    return AuthFault(
        token=str(opts["token"]),
        upstream=upstream,
        secret=token,
        collector=collector,
        upstream_change=change,
    )


def _export(target: str, token: str | None) -> grpc.StatusCode:
    from labctl.otlp.probe import grpc_export  # imported when used: keeps `labctl --help` fast

    return grpc_export(target, {"authorization": f"Bearer {token}"} if token else {}, timeout=2)[0]


def verify(ctx: FaultContext, rec: AuthFault) -> list[str]:
    import grpc

    # The host port reaches the Collector in both runtimes (docker publishes it on 127.0.0.1).
    target = ctx.lab.addr("collector", "otlp_grpc")
    codes: dict[str, grpc.StatusCode] = {}

    def enforced() -> bool:
        codes["none"] = _export(target, None)
        return codes["none"] == grpc.StatusCode.UNAUTHENTICATED

    if not wait_until("collector enforces auth", enforced, timeout=10, interval=0.2):
        raise LabError(
            f"the Collector at {target} does not require a token (export without one: {codes.get('none')})",
            f"see {ctx.lab.log_path('collector')}",
        )
    with_token = _export(target, rec.secret)
    if with_token != grpc.StatusCode.OK:
        raise LabError(f"the Collector rejects even the right token ({with_token.name})")
    names = proxy_admin.current(ctx).get("header_names", [])
    sends = "a wrong bearer token" if "authorization" in names else "no token"
    if not wait_until("proxy ready", lambda: ctx.runtime.probe("proxy", timeout=0.5), timeout=10):
        raise LabError("the proxy did not come back", f"see {ctx.lab.log_path('proxy')}")
    return [
        f"Collector {target}: export without a token → {codes['none'].name}, with its token → OK",
        f"the proxy now sends {sends}",
    ]


def heal(ctx: FaultContext, rec: AuthFault) -> None:
    def healthy(service: str) -> None:
        if not wait_until(f"{service} healthy", lambda: ctx.runtime.probe(service, timeout=0.5), timeout=15):
            raise LabError(f"{service} did not come back after healing", f"see {ctx.lab.log_path(service)}")

    run_all(
        [
            lambda: proxy_admin.reset_upstream(ctx),
            lambda: ctx.remove_overrides(rec.collector),
            lambda: healthy("collector"),
            lambda: healthy("proxy"),
        ]
    )
