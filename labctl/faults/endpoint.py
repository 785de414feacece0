"""`endpoint`: the proxy's upstream (its OTLP exporter to the Collector) points at a bad endpoint."""

from __future__ import annotations

import functools
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

from labctl.checks.probe import tcp_probe
from labctl.errors import LabError
from labctl.faults import proxy_admin
from labctl.faults.base import FaultContext, Option, run_all, wait_until
from labctl.faults.records import UpstreamFault
from labctl.lazy import requests
from labctl.state import find_free_ports

KINDS = ("unreachable-host", "wrong-port", "protocol-mismatch", "invalid-url")
OPTIONS = (
    Option(
        "kind", "what is wrong with the endpoint", choices=KINDS, default="unreachable-host", positional=True
    ),
)
# RFC 6761: names under .invalid never resolve, so this host is unreachable without touching any network.
UNREACHABLE_HOST = "collector.invalid"
# A frequent mistake: a gRPC "scheme". OTLP endpoints are http(s) URLs, so the proxy refuses to start.
INVALID_SCHEME = "grpc"


def _bad_env(ctx: FaultContext, kind: str) -> dict[str, str]:
    upstream = proxy_admin.configured_upstream(ctx)
    parsed = urllib.parse.urlparse(upstream)
    if kind == "unreachable-host":
        return {"LAB_PROXY_UPSTREAM": f"http://{UNREACHABLE_HOST}:{parsed.port}"}
    if kind == "wrong-port":
        port = find_free_ports(1)[0] if ctx.lab.runtime == "native" else 9  # nobody listens there
        return {"LAB_PROXY_UPSTREAM": f"http://{parsed.hostname}:{port}"}
    if kind == "protocol-mismatch":
        current = ctx.effective_env("proxy").get("LAB_PROXY_UPSTREAM_PROTOCOL", "grpc")
        other = "http/protobuf" if current == "grpc" else "grpc"
        return {"LAB_PROXY_UPSTREAM_PROTOCOL": other}  # same port, other protocol
    return {"LAB_PROXY_UPSTREAM": f"{INVALID_SCHEME}://{parsed.hostname}:{parsed.port}"}


_API_KEY = {"LAB_PROXY_UPSTREAM": "endpoint", "LAB_PROXY_UPSTREAM_PROTOCOL": "protocol"}


def apply(ctx: FaultContext, opts: dict[str, Any]) -> UpstreamFault:
    kind = str(opts["kind"])
    env = _bad_env(ctx, kind)
    if kind == "invalid-url":
        # The proxy refuses to start with an invalid URL (as a Collector would): that *is* the fault, so
        # this one goes through the proxy's env and a restart.
        undo = ctx.add_overrides("proxy", env=env, may_fail_start=True)
        return UpstreamFault(endpoint_kind=kind, env=env, overrides=[undo])
    # The others retarget the running proxy (no restart: counters and history stay).
    change = proxy_admin.set_upstream(ctx, **{_API_KEY[k]: v for k, v in env.items()})
    return UpstreamFault(endpoint_kind=kind, env=env, upstream_change=change)


def _upstream_now(ctx: FaultContext, rec: UpstreamFault) -> tuple[str, str]:
    if rec.upstream_change is not None:
        now = proxy_admin.current(ctx)
        return str(now.get("endpoint", "")), str(now.get("protocol", ""))
    env = ctx.effective_env("proxy")
    return env.get("LAB_PROXY_UPSTREAM", ""), env.get("LAB_PROXY_UPSTREAM_PROTOCOL", "grpc")


def verify(ctx: FaultContext, rec: UpstreamFault) -> list[str]:
    upstream, protocol = _upstream_now(ctx, rec)
    actual = {"LAB_PROXY_UPSTREAM": upstream, "LAB_PROXY_UPSTREAM_PROTOCOL": protocol}
    for key, value in rec.env.items():
        if actual[key] != value:
            raise LabError(f"the proxy's {_API_KEY[key]} is {actual[key]!r}, not {value!r}")
    kind = rec.endpoint_kind
    evidence = [f"proxy upstream: {upstream} ({protocol})"]
    if kind == "invalid-url":
        start_error = next((u.start_error for u in rec.overrides if u.start_error), None)
        if start_error:
            # The restart already saw it exit (on Docker the engine may be starting it again, to fail
            # the same way): one probe confirms nothing answers, no waiting needed.
            if ctx.runtime.probe("proxy", timeout=0.3):
                raise LabError("the proxy still answers with an invalid upstream URL")
        elif wait_until("proxy down", lambda: ctx.runtime.probe("proxy", timeout=0.3), timeout=1.0):
            raise LabError("the proxy still answers with an invalid upstream URL")
        evidence.append("the proxy refuses to start: its upstream is not an http(s) URL")
        return evidence
    if not wait_until("proxy ready", lambda: ctx.runtime.probe("proxy", timeout=0.5), timeout=10):
        raise LabError(
            "the proxy did not come back with its new upstream", f"see {ctx.lab.log_path('proxy')}"
        )
    parsed = urllib.parse.urlparse(upstream)
    host, port = parsed.hostname or "", parsed.port or 0
    if kind == "unreachable-host":
        try:
            socket.getaddrinfo(host, port)
        except socket.gaierror as exc:
            evidence.append(f"{host} does not resolve ({exc.strerror})")
        else:
            raise LabError(f"{host} resolves: the endpoint is not unreachable")
    elif kind == "wrong-port" and ctx.lab.runtime == "native":
        seen = tcp_probe(host, port, timeout=0.5)
        if seen != "refused":
            raise LabError(f"{host}:{port} should refuse connections but {seen}")
        evidence.append(f"{host}:{port} refuses connections (the Collector listens elsewhere)")
    elif kind == "protocol-mismatch" and ctx.lab.runtime == "native":
        try:
            resp = requests.post(
                f"http://{host}:{port}/v1/metrics",
                data=b"",
                timeout=1,
                headers={"Content-Type": "application/x-protobuf"},
            )
            outcome = f"HTTP {resp.status_code}"
            bad = not resp.ok
        except requests.RequestException as exc:
            outcome, bad = type(exc).__name__, True
        if not bad:
            raise LabError(f"{host}:{port} accepts OTLP/HTTP: no protocol mismatch")
        evidence.append(f"OTLP/HTTP to the gRPC port {host}:{port} fails ({outcome})")
    return evidence


def heal(ctx: FaultContext, rec: UpstreamFault) -> None:
    def ready() -> None:
        if not wait_until("proxy ready", lambda: ctx.runtime.probe("proxy", timeout=0.5), timeout=10):
            raise LabError("the proxy did not come back after healing", f"see {ctx.lab.log_path('proxy')}")

    steps: list[Callable[[], None]] = [functools.partial(ctx.remove_overrides, u) for u in rec.overrides]
    if rec.upstream_change is not None:
        steps.append(lambda: proxy_admin.reset_upstream(ctx))
    run_all([*steps, ready])
