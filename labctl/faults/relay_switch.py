"""Native hops through a permanent relay: a fault switches that relay's mode (scrape relay, query relay).

Why permanent relays: Prometheus passes changed scrape targets on only every ~5 s, and Grafana reads its
datasource URL from provisioning at start, so repointing either client at a fault relay is slow or
impossible at runtime. Natively those clients always go through a pass-through relay service (lab.yaml
hops' `native_via`: the scrape relay for Collector→Prometheus, the query relay for Prometheus→Grafana),
and a fault only switches the relay's mode through its loopback control API (labctl/faults/relay.py):
the client's next connection already meets the fault, and after heal what was held goes through at once.
The fault's record (records.RelaySwitch) names the relay service and every route it carries.
"""

from __future__ import annotations

from typing import Any

from labctl.checks.probe import tcp_probe
from labctl.errors import LabError
from labctl.faults.base import FaultContext
from labctl.faults.records import RelaySwitch, Route
from labctl.lazy import requests

MODE_FILE = "mode.json"  # lab.yaml passes `--state {data}/mode.json`: the mode a restarted relay keeps
# What proves a route works again after heal, per hop kind: a scrape, or a query-side readiness call.
HEAL_PATH = {
    "scrape": "/metrics",
    "query": "/-/ready",
    "alert": "/-/ready",
    "notify": "/healthz",
    "events": "/health",
    # Jaeger's OTLP/HTTP receiver has no GET endpoint: its 405 to a GET /v1/traces is the answer that
    # proves the route reaches it (HEAL_STATUS).
    "traces": "/v1/traces",
}
HEAL_STATUS = {"traces": 405}
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def relay_of(ctx: FaultContext, hop: str) -> str:
    """The relay service a hop goes through natively (lab.yaml `native_via`)."""
    via = ctx.model.hop(hop).native_via
    if via is None:
        raise LabError(
            f"the {hop} hop has no relay in lab.yaml (`native_via`)", "only relayed hops switch a relay"
        )
    return via[0]


def routes(ctx: FaultContext, service: str) -> list[Route]:
    """Every hop the relay service carries: its route's address, the real target, how heal proves it."""
    return [
        Route(
            addr=ctx.lab.addr(*hop.native_via),
            target=ctx.lab.addr(hop.target_service, hop.target_port),
            hop=hop.name,
            client=hop.source,
            service=hop.target_service,
            path=HEAL_PATH.get(hop.kind, "/"),
            kind=hop.kind,
        )
        for hop in ctx.model.hops
        if hop.native_via and hop.native_via[0] == service
    ]


def _name(service: str) -> str:
    return service.replace("-", " ")  # "scrape relay", "query relay": how docs and evidence call them


def _control(ctx: FaultContext, service: str) -> str:
    return ctx.lab.url(service, "control")


def _unreachable(ctx: FaultContext, service: str, what: str) -> LabError:
    return LabError(
        f"{what} the {_name(service)}'s control API at {_control(ctx, service)}",
        f"`labctl status`; `labctl logs {service}`; `labctl up {ctx.lab.stage}` starts it again",
    )


def _status(ctx: FaultContext, service: str) -> dict[str, Any]:
    try:
        resp = requests.get(_control(ctx, service) + "/status?detail=1", timeout=2)
        resp.raise_for_status()
        return dict(resp.json())
    except (requests.RequestException, ValueError) as exc:
        raise _unreachable(ctx, service, f"no answer ({type(exc).__name__}) from") from None


def _switch(ctx: FaultContext, service: str, mode: str, latency_ms: int = 0) -> dict[str, Any]:
    """PUT /mode: the relay answers once the mode is in effect (listeners closed/reopened, conns stalled/reset)."""
    try:
        resp = requests.put(
            _control(ctx, service) + "/mode",
            timeout=5,
            json={"mode": mode, "latency_ms": latency_ms, "quiet": ctx.quiet},
        )
    except requests.RequestException as exc:
        raise _unreachable(ctx, service, f"cannot reach ({type(exc).__name__})") from None
    try:
        doc = dict(resp.json())
    except ValueError:
        doc = {"error": resp.text[:200]}
    if resp.status_code != 200:
        raise LabError(
            f"the {_name(service)} did not switch to {mode}: {doc.get('error', resp.status_code)}",
            "free that port (`labctl doctor` names its owner), then `labctl heal` again"
            if resp.status_code == 409
            else f"see `labctl logs {service}`",
        )
    return doc


def apply(ctx: FaultContext, hop: str, mode: str, latency_ms: int) -> RelaySwitch:
    service = relay_of(ctx, hop)
    if service not in ctx.lab.ports or service not in ctx.running:
        raise LabError(
            f"{ctx.lab.stage} runs no {_name(service)}, the {hop} hop's way natively",
            f"lab/lab.yaml's stage {ctx.lab.stage} should list {service}",
        )
    if not ctx.runtime.is_running(service):
        raise LabError(
            f"the {_name(service)} (the {hop} hop's way natively) is not running",
            f"`labctl up {ctx.lab.stage}` starts it again; `labctl logs {service}` says why it stopped",
        )
    status = _switch(ctx, service, mode, latency_ms)
    return RelaySwitch(
        hop=hop,
        mode=mode,
        latency_ms=latency_ms,
        relay=service,
        control=_control(ctx, service),
        routes=routes(ctx, service),
        pid=status.get("pid"),
    )


def verify(ctx: FaultContext, rec: RelaySwitch) -> list[str]:
    """The relay's own status, then what the client meets on each route right now (no waiting for it)."""
    service = rec.relay
    status = _status(ctx, service)
    mode = rec.mode
    if status.get("mode") != mode:
        raise LabError(f"the {_name(service)} is in mode {status.get('mode')!r}, not {mode!r}")
    evidence = [f"{_name(service)} (pid {status.get('pid')}) switched to {mode} through {rec.control}/mode"]
    for route in rec.routes:
        host, port = route.addr.rsplit(":", 1)
        where = f"{route.addr} ({route.client.capitalize()}'s way to {route.target})"
        if mode == "refuse":
            seen = tcp_probe(host, int(port), timeout=0.5)
            if seen != "refused":
                raise LabError(f"{route.addr} should refuse connections but {seen}")
            evidence.append(f"{where} refuses connections")
        elif mode == "blackhole":
            request = (
                H2_PREFACE
                if route.kind == "push"
                else f"GET {route.path} HTTP/1.1\r\nHost: {service}\r\n\r\n".encode()
            )
            seen = tcp_probe(host, int(port), timeout=0.3, payload=request)
            if seen != "silent":
                raise LabError(f"the {_name(service)} at {route.addr} is not black-holing ({seen})")
            evidence.append(f"{where} accepts a request and never answers")
        else:
            if status.get("latency_ms") != rec.latency_ms:
                raise LabError(
                    f"the {_name(service)} delays by {status.get('latency_ms')} ms, not {rec.latency_ms}"
                )
            evidence.append(f"{where} relays with {rec.latency_ms} ms delay per chunk")
    return evidence


def heal(ctx: FaultContext, rec: RelaySwitch) -> None:
    service = rec.relay
    if not ctx.runtime.is_running(service):
        reset_saved_mode(ctx, service)  # gone meanwhile: its next start must not bring the fault back
        return
    _switch(ctx, service, "pass")
    # Healed means a request through the relay works again, not just that its mode changed.
    for route in rec.routes:
        target = route.service
        if not ctx.runtime.is_running(target):
            continue  # nothing behind it (another fault stopped it); the relay itself is back to pass
        if route.kind == "push":  # OTLP gRPC: the Collector answers the HTTP/2 preface again
            host, port = route.addr.rsplit(":", 1)
            seen = tcp_probe(host, int(port), timeout=3, payload=H2_PREFACE)
            if seen != "answers":
                raise LabError(
                    f"the {_name(service)} at {route.addr} still does not pass to {route.target} "
                    f"after heal ({seen})",
                    f"see `labctl logs {service}` and `labctl logs {target}`",
                )
            continue
        url = f"http://{route.addr}{route.path}"
        try:
            resp = requests.get(url, timeout=3)
        except requests.RequestException as exc:
            raise LabError(
                f"a request through the {_name(service)} still fails after heal: {url}: {type(exc).__name__}",
                f"see `labctl logs {service}`",
            ) from None
        if resp.status_code != HEAL_STATUS.get(route.kind, 200):
            raise LabError(
                f"a request through the {_name(service)} still fails after heal: {url}: HTTP "
                f"{resp.status_code} {resp.text[:160]}",
                f"see `labctl logs {service}` and `labctl logs {target}`",
            )


def reset_saved_mode(ctx_or_lab: Any, service: str) -> None:
    """Write `pass` into the relay's state file (for a relay that is not running: `down`, or it died)."""
    lab = getattr(ctx_or_lab, "lab", ctx_or_lab)
    path = lab.data_dir(service) / MODE_FILE
    if path.exists():
        tmp = path.with_name(f".{path.name}.labctl.tmp")
        tmp.write_text('{"mode": "pass", "latency_ms": 0}')
        tmp.replace(path)
