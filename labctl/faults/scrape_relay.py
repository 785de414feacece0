"""The collector→Prometheus scrape hop in the native runtime: switch the lab's permanent scrape relay.

Why a permanent relay: Prometheus passes changed scrape targets on only every ~5 s, so repointing its
file_sd targets at a fault relay made `break`/`heal` of this hop slow. Natively Prometheus always scrapes
the Collector through the `scrape-relay` service (lab/lab.yaml, hops' `native_via`; the targets keep the
Collector's address as `instance`), and a fault only switches the relay's mode through its loopback
control API (labctl/faults/relay.py): the next scrape already fails, and after heal the scrape held
during the black hole goes through at once.
"""

from __future__ import annotations

from typing import Any

import requests

from labctl.checks.probe import tcp_probe
from labctl.errors import LabError
from labctl.faults.base import FaultContext

SERVICE = "scrape-relay"
MODE_FILE = "mode.json"  # lab.yaml passes `--state {data}/mode.json`: the mode a restarted relay keeps
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: scrape-relay\r\n\r\n"


def routes(ctx: FaultContext) -> list[dict[str, str]]:
    """[{addr: relay host:port, target: the Collector's host:port}] for every hop relayed natively."""
    return [{"addr": ctx.lab.addr(*hop.native_via), "target": ctx.lab.addr(hop.target_service, hop.target_port)}
            for hop in ctx.model.hops if hop.native_via and hop.native_via[0] == SERVICE]


def _control(ctx: FaultContext) -> str:
    return ctx.lab.url(SERVICE, "control")


def _status(ctx: FaultContext) -> dict[str, Any]:
    try:
        resp = requests.get(_control(ctx) + "/status", timeout=2)
        resp.raise_for_status()
        return dict(resp.json())
    except (requests.RequestException, ValueError) as exc:
        raise LabError(f"the scrape relay's control API at {_control(ctx)} does not answer ({type(exc).__name__})",
                       f"`labctl status`; `labctl logs {SERVICE}`; `labctl up {ctx.lab.stage}` starts it again") from None


def _switch(ctx: FaultContext, mode: str, latency_ms: int = 0) -> dict[str, Any]:
    """PUT /mode: the relay answers once the mode is in effect (listeners closed/reopened, conns stalled/reset)."""
    try:
        resp = requests.put(_control(ctx) + "/mode", json={"mode": mode, "latency_ms": latency_ms}, timeout=5)
    except requests.RequestException as exc:
        raise LabError(f"cannot reach the scrape relay's control API at {_control(ctx)} ({type(exc).__name__})",
                       f"`labctl status`; `labctl logs {SERVICE}`; `labctl up {ctx.lab.stage}` starts it again") from None
    try:
        doc = dict(resp.json())
    except ValueError:
        doc = {"error": resp.text[:200]}
    if resp.status_code != 200:
        raise LabError(f"the scrape relay did not switch to {mode}: {doc.get('error', resp.status_code)}",
                       "free that port (`labctl doctor` names its owner), then `labctl heal` again"
                       if resp.status_code == 409 else f"see `labctl logs {SERVICE}`")
    return doc


def apply(ctx: FaultContext, mode: str, latency_ms: int) -> dict[str, Any]:
    if SERVICE not in ctx.lab.ports or SERVICE not in ctx.running:
        raise LabError("this lab has no scrape relay (it was started by an older labctl)",
                       f"restart it once: `labctl down` then `labctl up {ctx.lab.stage}`")
    if not ctx.runtime.is_running(SERVICE):
        raise LabError("the scrape relay (Prometheus' way to the Collector natively) is not running",
                       f"`labctl up {ctx.lab.stage}` starts it again; `labctl logs {SERVICE}` says why it stopped")
    status = _switch(ctx, mode, latency_ms)
    return {"hop": "collector-prometheus", "mode": mode, "latency_ms": latency_ms, "relays": [],
            "switch": {"service": SERVICE, "control": _control(ctx), "routes": routes(ctx), "pid": status.get("pid")}}


def verify(ctx: FaultContext, rec: dict[str, Any]) -> list[str]:
    """The relay's own status, then what a scraper sees on each route right now (no waiting for Prometheus)."""
    status = _status(ctx)
    mode = rec["mode"]
    if status.get("mode") != mode:
        raise LabError(f"the scrape relay is in mode {status.get('mode')!r}, not {mode!r}")
    evidence = [f"scrape relay (pid {status.get('pid')}) switched to {mode} through {rec['switch']['control']}/mode"]
    for route in rec["switch"]["routes"]:
        host, port = route["addr"].rsplit(":", 1)
        where = f"{route['addr']} (Prometheus' scrape target for the Collector at {route['target']})"
        if mode == "refuse":
            seen = tcp_probe(host, int(port), timeout=0.5)
            if seen != "refused":
                raise LabError(f"{route['addr']} should refuse connections but {seen}")
            evidence.append(f"{where} refuses connections")
        elif mode == "blackhole":
            seen = tcp_probe(host, int(port), timeout=0.3, payload=SCRAPE)
            if seen != "silent":
                raise LabError(f"the scrape relay at {route['addr']} is not black-holing ({seen})")
            evidence.append(f"{where} accepts a scrape and never answers")
        else:
            if status.get("latency_ms") != rec["latency_ms"]:
                raise LabError(f"the scrape relay delays by {status.get('latency_ms')} ms, not {rec['latency_ms']}")
            evidence.append(f"{where} relays with {rec['latency_ms']} ms delay per chunk")
    return evidence


def heal(ctx: FaultContext, rec: dict[str, Any]) -> None:
    if not ctx.runtime.is_running(SERVICE):
        reset_saved_mode(ctx)  # gone meanwhile: its next start must not bring the fault back
        return
    _switch(ctx, "pass")
    # Healed means a scrape through the relay works again, not just that its mode changed.
    if not ctx.runtime.is_running("collector"):
        return  # nothing to scrape (another fault stopped it); the relay itself is back to pass
    for route in rec["switch"]["routes"]:
        url = f"http://{route['addr']}/metrics"
        try:
            resp = requests.get(url, timeout=3)
        except requests.RequestException as exc:
            raise LabError(f"a scrape through the relay still fails after heal: {url}: {type(exc).__name__}",
                           f"see `labctl logs {SERVICE}`") from None
        if resp.status_code != 200:
            raise LabError(f"a scrape through the relay still fails after heal: {url}: HTTP {resp.status_code} "
                           f"{resp.text[:160]}", f"see `labctl logs {SERVICE}` and `labctl logs collector`")


def reset_saved_mode(ctx_or_lab: Any) -> None:
    """Write `pass` into the relay's state file (for a relay that is not running: `down`, or it died)."""
    lab = getattr(ctx_or_lab, "lab", ctx_or_lab)
    path = lab.data_dir(SERVICE) / MODE_FILE
    if path.exists():
        tmp = path.with_name(f".{path.name}.labctl.tmp")
        tmp.write_text('{"mode": "pass", "latency_ms": 0}')
        tmp.replace(path)
