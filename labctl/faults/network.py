"""`network` and `latency`: a fault relay placed on one hop (native), or a network cut (docker).

Native: the client of the hop is repointed through a relay that black-holes (connections are accepted
and never answered — requests hang until the client's own timeout, like a real partition), delays, or
— with `--mode refuse` — at a closed port (connection refused). The running proxy's upstream is
repointed through its admin API (PUT /api/upstream: no restart, counters and history stay); Prometheus's
scrape target through its file_sd file (re-read by itself).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from labctl.checks.probe import http_get, tcp_probe
from labctl.errors import LabError
from labctl.faults import docker_net, proxy_admin
from labctl.faults.base import FaultContext, Option, run_all, wait_until
from labctl.faults.relays import relay_alive, relay_status, start_relay, stop_relay, wait_relay
from labctl.runtimes.targets import SCRAPE_TARGETS
from labctl.state import find_free_ports

HOPS = ("proxy-collector", "collector-prometheus", "prometheus-grafana")
HOP_LAYER = {"proxy-collector": 2, "collector-prometheus": 3, "prometheus-grafana": 4}
# The file_sd files that point Prometheus at the Collector (both its exporter and its own metrics).
SCRAPE_FILES = [f for f, (svc, _p) in SCRAPE_TARGETS.items() if svc == "collector"]
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

NETWORK_OPTIONS = (
    Option("hop", "which hop to cut", choices=HOPS, default="proxy-collector", positional=True),
    Option("mode", "hang: connections hang and time out; refuse: connection refused",
           choices=("hang", "refuse"), default="hang"),
)
LATENCY_OPTIONS = (
    Option("ms", "delay added to every chunk of data on the hop, in milliseconds", kind=int, default=500,
           positional=True),
    Option("hop", "which hop to slow down", choices=HOPS[:2], default="proxy-collector"),
)


def proxy_upstream(ctx: FaultContext) -> str:
    """The proxy's current upstream URL (lab.yaml env + overrides); LabError when it has none."""
    upstream = ctx.effective_env("proxy").get("LAB_PROXY_UPSTREAM", "")
    if not upstream:
        raise LabError("the proxy has no upstream in this module (nothing to cut)",
                       "break the proxy↔collector hop from module-2 on: `labctl up module-2`")
    return upstream


def _hostport(url: str) -> str:
    parsed = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
    return f"{parsed.hostname}:{parsed.port}"


def _needs(ctx: FaultContext, *services: str) -> None:
    missing = [s for s in services if s not in ctx.running]
    if missing:
        raise LabError(f"this fault needs {', '.join(missing)}, which {ctx.lab.stage} does not run",
                       "start a later module first, e.g. `labctl up module-3`")


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
            raise LabError("the latency fault runs a relay on this machine, which containers cannot use",
                           "use the native runtime (`labctl --runtime native up <module>`) for latency")
        # A real cut of the hop's target (both modes: peers then fail to resolve/reach it).
        return docker_net.partition(ctx, hop)
    if hop == "proxy-collector":
        _needs(ctx, "proxy", "collector")
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
        return _apply_scrape(ctx, mode, latency_ms)
    _needs(ctx, "prometheus", "grafana")
    if not ctx.runtime.is_running("grafana"):
        raise LabError("Grafana is not running in this lab, so there is no prometheus↔grafana hop to cut",
                       "natively Grafana needs its binary (`labctl install grafana`); or use --runtime docker")
    raise LabError("the native prometheus↔grafana partition needs Grafana's datasource URL to be repointed, "
                   "which this lab's Grafana provisioning does not take from the environment",
                   "use --runtime docker for this hop, or cut collector-prometheus instead")


def _relay_or_closed_port(ctx: FaultContext, name: str, target: str, mode: str,
                          latency_ms: int, wait: bool = True) -> dict[str, Any]:
    if mode == "refuse":
        # A port nobody listens on: the kernel answers SYN with RST, exactly "connection refused".
        port = find_free_ports(1)[0]
        return {"name": name, "port": port, "addr": f"127.0.0.1:{port}", "target": target, "mode": "refuse"}
    return start_relay(ctx, "network" if mode == "blackhole" else "latency", name, target, mode, latency_ms,
                       wait=wait)


def _targets_dir(ctx: FaultContext) -> Path:
    docker_dir = getattr(ctx.runtime, "targets_dir", None)  # docker writes targets outside the data dir
    return Path(docker_dir) if docker_dir else ctx.lab.data_dir("prometheus") / "targets"


def _apply_scrape(ctx: FaultContext, mode: str, latency_ms: int) -> dict[str, Any]:
    folder = _targets_dir(ctx)
    relays: list[dict[str, Any]] = []
    originals: dict[str, str] = {}
    rewritten: dict[str, str] = {}
    try:
        for filename in SCRAPE_FILES:
            text = (folder / filename).read_text()
            originals[filename] = text
            new_groups = []
            for group in json.loads(text):
                targets = []
                for target in group.get("targets", []):
                    # Relays start side by side; the files change once all of them listen.
                    relay = _relay_or_closed_port(ctx, f"scrape-{filename.removesuffix('.json')}", target,
                                                  mode, latency_ms, wait=False)
                    relays.append(relay)
                    targets.append(relay["addr"])
                new_groups.append({**group, "targets": targets})
            rewritten[filename] = json.dumps(new_groups, indent=2) + "\n"
        for relay in relays:
            if "pid_file" in relay:
                wait_relay(relay)
        for filename, text in rewritten.items():
            _write_atomic(folder / filename, text)
    except (OSError, LabError) as exc:
        for relay in relays:
            if "pid_file" in relay:
                stop_relay(relay)
        for filename, text in originals.items():
            if filename in rewritten:
                _write_atomic(folder / filename, text)
        raise LabError(f"cannot cut the scrape hop in {folder}: {exc}",
                       "is Prometheus part of this lab? `labctl status`") from None
    return {"hop": "collector-prometheus", "mode": mode, "relays": relays,
            "targets_dir": str(folder), "originals": originals}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.fault.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # Prometheus watches the folder and never reads half a file


def verify(ctx: FaultContext, rec: dict[str, Any]) -> list[str]:
    if rec.get("docker"):
        return docker_net.verify(ctx, rec)
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
            evidence.append(f"{relay['addr']} relays to {relay['target']} with {relay['latency_ms']} ms delay")
    if rec["hop"] == "proxy-collector":
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
            raise LabError("the proxy did not come back after repointing its upstream",
                           f"see {ctx.lab.log_path('proxy')}")
        evidence.append(f"{how} {upstream}")
    else:
        evidence.extend(_verify_scrape(ctx, rec))
    return evidence


def _verify_scrape(ctx: FaultContext, rec: dict[str, Any]) -> list[str]:
    ports = {str(r["port"]) for r in rec["relays"]}
    url = ctx.lab.url("prometheus", "web") + "/api/v1/targets"
    seen: list[str] = []

    def repointed() -> bool:
        reply = http_get(url, timeout=1)
        if not reply.ok:
            return False
        active = reply.json()["data"]["activeTargets"]
        seen[:] = [t["scrapeUrl"] for t in active]
        hits = {p for p in ports if any(f":{p}/" in s for s in seen)}
        return hits == ports

    if not wait_until("prometheus re-read targets", repointed, timeout=10, interval=0.1):
        raise LabError("Prometheus did not pick up the rewritten scrape targets",
                       f"scrape URLs seen: {', '.join(seen) or 'none'}")
    return [f"Prometheus now scrapes {u}" for u in seen if any(f":{p}/" in u for p in ports)]


def heal(ctx: FaultContext, rec: dict[str, Any]) -> None:
    if rec.get("docker"):
        docker_net.heal(ctx, rec)
        return
    steps: list[Any] = [lambda u=u: ctx.remove_overrides(u) for u in rec.get("overrides", [])]
    if "upstream_change" in rec:
        steps.append(lambda: proxy_admin.reset_upstream(ctx))  # before the relay goes: no dangling connection
    if rec["hop"] == "collector-prometheus":
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


def relay_counts(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [relay_status(r) for r in rec.get("relays", []) if "status" in r]


def touches(opts: dict[str, Any]) -> set[str]:
    return {f"hop:{opts.get('hop')}"}
