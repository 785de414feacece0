"""`network` and `latency`: switch a hop's permanent relay (native), or a network cut (docker).

Natively every hop goes through a permanent pass-through relay (lab.yaml hops' `native_via`): the proxy
exports through the OTLP relay, Prometheus scrapes through the scrape relay, Grafana queries through the
query relay. A fault switches that relay's mode at runtime (labctl/faults/relay_switch.py): black hole
(connections are accepted and never answered — requests hang until the client's own timeout, like a real
partition), refuse, or latency. Nothing is re-pointed, so a cut hop looks like a cut hop, not like a
wrong endpoint. Labs started by an older labctl (no OTLP relay) re-point the running proxy at a relay
started for the fault (admin API PUT /api/upstream) and still heal; records with `originals` (scrape
targets rewritten) heal by restoring those files.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from labctl.checks.probe import http_get, tcp_probe
from labctl.errors import LabError
from labctl.faults import docker_net, proxy_admin, relay_switch
from labctl.faults.base import FaultContext, Option, run_all, wait_until
from labctl.faults.relays import relay_alive, start_relay, stop_relay
from labctl.state import find_free_ports

RELAY = "otlp-relay"  # lab.yaml: natively the proxy → Collector hop's permanent relay
HOPS = (
    "proxy-collector",
    "collector-prometheus",
    "prometheus-grafana",
    "prometheus-alertmanager",
    "alertmanager-receiver",
)
HOP_LAYER = {
    "proxy-collector": 2,
    "collector-prometheus": 3,
    "prometheus-grafana": 4,
    "prometheus-alertmanager": 4,
    "alertmanager-receiver": 4,
}
# The services at either end of a hop (the fault needs both running).
HOP_ENDS = {
    "prometheus-alertmanager": ("prometheus", "alertmanager"),
    "alertmanager-receiver": ("alertmanager", "notify-receiver"),
}
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

NETWORK_OPTIONS = (
    Option("hop", "which hop to cut", choices=HOPS, default="proxy-collector", positional=True),
    Option(
        "mode",
        "hang: connections hang and time out; refuse: connection refused",
        choices=("hang", "refuse"),
        default="hang",
    ),
)
LATENCY_OPTIONS = (
    Option(
        "ms",
        "delay added to every chunk of data on the hop, in milliseconds",
        kind=int,
        default=500,
        positional=True,
    ),
    Option("hop", "which hop to slow down", choices=HOPS, default="proxy-collector"),
)


def proxy_upstream(ctx: FaultContext) -> str:
    """The proxy's current upstream URL (lab.yaml env + overrides); LabError when it has none."""
    upstream = ctx.effective_env("proxy").get("LAB_PROXY_UPSTREAM", "")
    if not upstream:
        raise LabError(
            "the proxy has no upstream in this module (nothing to cut)",
            "break the proxy↔collector hop from module-2 on: `labctl up module-2`",
        )
    return upstream


def _hostport(url: str) -> str:
    parsed = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
    return f"{parsed.hostname}:{parsed.port}"


def _needs(ctx: FaultContext, *services: str) -> None:
    missing = [s for s in services if s not in ctx.running]
    if missing:
        raise LabError(
            f"this fault needs {', '.join(missing)}, which {ctx.lab.stage} does not run",
            "start a later module first, e.g. `labctl up module-3`",
        )


# --- apply / verify / heal --------------------------------------------------------------------------


def apply_network(ctx: FaultContext, opts: dict[str, Any]) -> dict[str, Any]:
    return _apply(ctx, str(opts["hop"]), "blackhole" if opts["mode"] == "hang" else "refuse", 0)


def apply_latency(ctx: FaultContext, opts: dict[str, Any]) -> dict[str, Any]:
    return _apply(ctx, str(opts["hop"]), "latency", int(opts["ms"]))


def _apply(ctx: FaultContext, hop: str, mode: str, latency_ms: int) -> dict[str, Any]:
    record = _apply_hop(ctx, hop, mode, latency_ms)
    record["layer"] = HOP_LAYER[hop]
    return record


def _apply_hop(ctx: FaultContext, hop: str, mode: str, latency_ms: int) -> dict[str, Any]:
    if ctx.lab.runtime == "docker":
        if mode == "latency":
            raise LabError(
                "the latency fault runs a relay on this machine, which containers cannot use",
                "use the native runtime (`labctl --runtime native up <module>`) for latency",
            )
        _needs(ctx, *HOP_ENDS.get(hop, hop.split("-")))
        # A real cut of the hop's own network; a stand-in answers for the target as the mode says.
        return docker_net.partition(ctx, hop, mode)
    if hop == "proxy-collector":
        _needs(ctx, "proxy", "collector")
        if RELAY in ctx.running and RELAY in ctx.lab.ports:
            # The proxy always sends through the lab's OTLP relay natively: switch it, re-point nothing.
            return relay_switch.apply(ctx, hop, mode, latency_ms)
        # A lab started by an older labctl (no OTLP relay): re-point the proxy at a fault relay.
        target = _hostport(proxy_upstream(ctx))
        relay = _relay_or_closed_port(ctx, "proxy-collector", target, mode, latency_ms)
        # The running proxy is retargeted (no restart: its counters and history stay).
        try:
            change = proxy_admin.set_upstream(ctx, endpoint=f"http://{relay['addr']}")
        except LabError:
            if "pid_file" in relay:
                stop_relay(relay)
            raise
        return {"hop": hop, "mode": mode, "relays": [relay], "upstream_change": change}
    if hop == "collector-prometheus":
        _needs(ctx, "collector", "prometheus")
        return relay_switch.apply(ctx, hop, mode, latency_ms)
    if hop in HOP_ENDS:  # module-4's alerting hops: the alert relay and the notify relay
        _needs(ctx, *HOP_ENDS[hop])
        return relay_switch.apply(ctx, hop, mode, latency_ms)
    _needs(ctx, "prometheus", "grafana")
    if not ctx.runtime.is_running("grafana"):
        raise LabError(
            "Grafana is not running in this lab, so there is no prometheus↔grafana hop to cut",
            "natively Grafana needs its binary (`labctl install grafana`); or use --runtime docker",
        )
    # Grafana's datasource URL is the query relay's route (lab.yaml `hop_addr`): switch the relay.
    return relay_switch.apply(ctx, hop, mode, latency_ms)


def _relay_or_closed_port(
    ctx: FaultContext, name: str, target: str, mode: str, latency_ms: int
) -> dict[str, Any]:
    if mode == "refuse":
        # A port nobody listens on: the kernel answers SYN with RST, exactly "connection refused".
        port = find_free_ports(1)[0]
        return {"name": name, "port": port, "addr": f"127.0.0.1:{port}", "target": target, "mode": "refuse"}
    return start_relay(ctx, "network" if mode == "blackhole" else "latency", name, target, mode, latency_ms)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.fault.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # Prometheus watches the folder and never reads half a file


def verify(ctx: FaultContext, rec: dict[str, Any]) -> list[str]:
    if rec.get("docker"):
        return docker_net.verify(ctx, rec)
    if "switch" in rec:
        return relay_switch.verify(ctx, rec)
    evidence: list[str] = []
    for relay in rec["relays"]:
        host, port = relay["addr"].split(":")
        if relay["mode"] == "refuse":
            seen = tcp_probe(host, int(port), timeout=0.5)
            if seen != "refused":
                raise LabError(f"{relay['addr']} should refuse connections but {seen}")
            evidence.append(f"{relay['addr']} refuses connections (stands in for {relay['target']})")
        elif relay["mode"] == "blackhole":
            seen = tcp_probe(host, int(port), timeout=0.3, payload=H2_PREFACE)
            if seen != "silent" or not relay_alive(relay):
                raise LabError(f"the partition relay at {relay['addr']} is not black-holing ({seen})")
            evidence.append(f"{relay['addr']} accepts and never answers (black hole for {relay['target']})")
        else:
            if not relay_alive(relay):
                raise LabError(f"the latency relay at {relay['addr']} is not running")
            evidence.append(
                f"{relay['addr']} relays to {relay['target']} with {relay['latency_ms']} ms delay"
            )
    # Only the proxy-collector hop gets here (relayed hops' records have "switch" or are healed only).
    want = f"http://{rec['relays'][0]['addr']}"
    if "upstream_change" in rec:  # retargeted at runtime: the proxy's own report is the proof
        upstream = proxy_admin.current(ctx).get("endpoint")
        how = "proxy forwards to"
    else:  # a record from before runtime retargeting (env override + restart)
        upstream = ctx.effective_env("proxy").get("LAB_PROXY_UPSTREAM")
        how = "proxy restarted with upstream"
    if upstream != want:
        raise LabError(f"the proxy's upstream is {upstream}, not {want}")
    if not wait_until("proxy ready", lambda: ctx.runtime.probe("proxy", timeout=0.5), timeout=10):
        raise LabError(
            "the proxy did not come back after repointing its upstream", f"see {ctx.lab.log_path('proxy')}"
        )
    evidence.append(f"{how} {upstream}")
    return evidence


def heal(ctx: FaultContext, rec: dict[str, Any]) -> None:
    if rec.get("docker"):
        docker_net.heal(ctx, rec)
        return
    if "switch" in rec:
        relay_switch.heal(ctx, rec)
        return
    steps: list[Any] = [lambda u=u: ctx.remove_overrides(u) for u in rec.get("overrides", [])]
    if "upstream_change" in rec:
        steps.append(lambda: proxy_admin.reset_upstream(ctx))  # before the relay goes: no dangling connection
    if "originals" in rec:  # an older labctl rewrote Prometheus' scrape targets: put them back
        steps.append(lambda: _restore_scrape(ctx, rec))
    steps += [lambda r=r: stop_relay(r) for r in rec["relays"] if "pid_file" in r]
    if rec["hop"] == "proxy-collector":
        steps.append(lambda: _proxy_ready(ctx))
    run_all(steps)


def _proxy_ready(ctx: FaultContext) -> None:
    if not wait_until("proxy ready", lambda: ctx.runtime.probe("proxy", timeout=0.5), timeout=10):
        raise LabError("the proxy did not come back after healing", f"see {ctx.lab.log_path('proxy')}")


def _restore_scrape(ctx: FaultContext, rec: dict[str, Any]) -> None:
    folder = Path(rec["targets_dir"])
    for filename, text in rec["originals"].items():
        _write_atomic(folder / filename, text)
    # Healed means Prometheus scrapes the real addresses again, not just that the files are back.
    want = {t for text in rec["originals"].values() for group in json.loads(text) for t in group["targets"]}
    url = ctx.lab.url("prometheus", "web") + "/api/v1/targets"

    def back() -> bool:
        reply = http_get(url, timeout=1)
        urls = [t["scrapeUrl"] for t in reply.json()["data"]["activeTargets"]] if reply.ok else []
        return all(any(f"//{t}/" in u for u in urls) for t in want)

    if not wait_until("prometheus scrapes the real targets", back, timeout=10, interval=0.1):
        raise LabError("Prometheus did not pick up the restored scrape targets", f"files in {folder}")


def touches(opts: dict[str, Any]) -> set[str]:
    return {f"hop:{opts.get('hop')}"}
