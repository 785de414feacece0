"""Run matrix cases: real receivers per case, the emulator as a child process, observed vs expected.

Every case gets its own directory, its own receivers on fresh ports (and its own loopback address where the
case says so) and its own emulator process configured only through environment variables. What is observed
comes from the real parts: the emulator's run summary (what the SDK exporters did and logged), the
Collector's own metrics (accepted/refused by transport), the proxy's /api/stats, Prometheus' query API,
the Prometheus exporter's /metrics and the console exporter's stdout.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from labctl.errors import LabError
from labctl.matrix.cases import Case
from labctl.matrix.receivers import (
    REPO,
    BlackHole,
    Collector,
    Prometheus,
    Proxy,
    Unreachable,
)
from labctl.matrix.verdict import CaseResult, compare, total
from labctl.state import free_port

CONFIG_ERROR_MARK = "would fail to start telemetry"
CLIENT_VARS = re.compile(r"^(OTEL_|CLAUDE_CODE_|NODE_EXTRA_CA_CERTS$)")


@dataclass
class Setup:
    """The receivers of one case and the placeholder values they provide."""

    values: dict[str, str] = field(default_factory=dict)
    collector: Collector | None = None
    collector_b: Collector | None = None  # a second, independent Collector ("multiple collectors")
    proxy: Proxy | None = None
    prometheus: Prometheus | None = None
    scrape_port: int | None = None
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception as exc:
                print(f"matrix: cleanup failed: {exc}", file=sys.stderr)


def _start_receivers(case: Case, workdir: Path) -> Setup:
    r = case.receiver
    kind = r["kind"]
    host = str(r.get("host", "127.0.0.1"))
    token = secrets.token_urlsafe(16)
    setup = Setup()
    v = setup.values
    v.update(
        token=token,
        bad_token="not-" + token[:10],
        prom_port=str(free_port()),
        refused_url=f"http://127.0.0.1:{free_port()}",
    )
    try:
        if kind == "collector":
            c = Collector(
                workdir / "collector",
                host=host,
                auth_token=token if r.get("auth") else None,
                tls=bool(r.get("tls")),
            )
            setup.stoppers.append(c.stop)
            c.start()
            setup.collector = c
            v.update(
                host=host,
                grpc_port=str(c.grpc_port),
                http_port=str(c.http_port),
                grpc_url=f"http://{c.grpc_addr}",
                http_url=f"http://{c.http_addr}",
                https_grpc_url=f"https://{c.grpc_addr}",
                https_http_url=f"https://{c.http_addr}",
                ca=str(c.cert or ""),
            )
            if r.get("scrape"):
                setup.scrape_port = int(v["prom_port"])
            if r.get("second"):
                b = Collector(workdir / "collector-b", host=str(r["second"]))
                setup.stoppers.append(b.stop)
                b.start()
                setup.collector_b = b
                v.update(grpc_url_b=f"http://{b.grpc_addr}", http_url_b=f"http://{b.http_addr}")
        elif kind == "proxy":
            upstream = None
            if r.get("upstream") == "collector":  # the lab's module-2 pipeline: client → proxy → Collector
                c = Collector(workdir / "collector")
                setup.stoppers.append(c.stop)
                c.start()
                setup.collector = c
                upstream = f"http://{c.grpc_addr}"
            p = Proxy(
                workdir / "proxy", host=host, auth_token=token if r.get("auth") else None, upstream=upstream
            )
            setup.stoppers.append(p.stop)
            p.start()
            setup.proxy = p
            v.update(
                host=host,
                grpc_port=str(p.grpc_port),
                http_port=str(p.http_port),
                grpc_url=f"http://{host}:{p.grpc_port}",
                http_url=f"http://{host}:{p.http_port}",
            )
        elif kind == "prometheus-scrape":
            prom = Prometheus(
                workdir / "prometheus", scrape_target=f"127.0.0.1:{v['prom_port']}", interval_s=1
            )
            setup.stoppers.append(prom.stop)
            prom.start()
            setup.prometheus = prom
        elif kind == "prometheus-otlp":
            prom = Prometheus(workdir / "prometheus", otlp_receiver=True)
            setup.stoppers.append(prom.stop)
            prom.start()
            setup.prometheus = prom
            v["otlp_url"] = prom.otlp_url
        elif kind == "blackhole":
            bh = BlackHole(host).start()
            setup.stoppers.append(bh.stop)
            v.update(url=f"http://{host}:{bh.port}", host=host)
        elif kind == "unreachable":
            un = Unreachable(host).start()
            setup.stoppers.append(un.stop)
            v.update(url=f"http://{host}:{un.port}", host=host)
        elif kind == "scrape":
            if r.get("port"):
                v["prom_port"] = str(r["port"])
            setup.scrape_port = int(v["prom_port"])
    except BaseException:
        setup.stop()
        raise
    return setup


def _fill(text: str, values: dict[str, str], case: Case) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise LabError(
                f"case {case.id}: placeholder {{{key}}} is not provided by receiver "
                f"{case.receiver['kind']!r}",
                "see the placeholders in lab/matrix/cases.yaml",
            )
        return values[key]

    return re.sub(r"\{([a-z_]+)\}", sub, text)


def _client_env(case: Case, values: dict[str, str]) -> dict[str, str]:
    # Start from this process's environment without any client setting, so the developer's own
    # OTEL_* variables never leak into a case.
    env = {k: v for k, v in os.environ.items() if not CLIENT_VARS.match(k)}
    for k, val in case.env.items():
        if val is not None:
            env[k] = _fill(val, values, case)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _scrape_loop(port: int, stop: threading.Event, found: dict[str, Any]) -> None:
    while not stop.is_set():
        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            names = sorted(
                {
                    line.split("{")[0].split(" ")[0]
                    for line in text.splitlines()
                    if line.startswith("claude_code_")
                }
            )
            if names:
                found["names"] = names
                found["sample"] = next((ln for ln in text.splitlines() if ln.startswith("claude_code_")), "")
        except requests.RequestException as exc:
            found.setdefault("errors", str(exc)[:200])
        stop.wait(0.4)


def _wait_collector(c: Collector, deadline_s: float) -> dict[str, dict[str, float]]:
    """The Collector's accepted/refused counts, once they stop changing (its batch processor waits 1 s)."""
    time.sleep(1.2)  # the exit flush may still sit in the Collector's 1 s batch
    last: dict[str, dict[str, float]] = c.received()
    stable = 0
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and stable < 2:
        time.sleep(0.4)
        cur = c.received()
        stable = stable + 1 if cur == last else 0
        last = cur
    return last


def _startup_error(stderr: str) -> str:
    """The error line(s) of a refused start, without the hint."""
    text = " ".join(stderr.split())
    text = text.split("what to do:", 1)[0]
    return text[text.find("error:") :].removeprefix("error:").strip()[:400]


def observe_case(case: Case, workdir: Path) -> dict[str, Any]:
    setup = _start_receivers(case, workdir)
    try:
        env = _client_env(case, setup.values)
        marker = f"matrix-{case.id}"
        summary_path = workdir / "summary.json"
        argv = [
            sys.executable,
            "-m",
            "labctl.emulator",
            "emit",
            "--duration",
            str(case.emit.get("duration", 2.5)),
            "--sessions",
            str(int(case.emit.get("sessions", 2))),
            "--rate",
            str(case.emit.get("rate", 60)),
            "--seed",
            "7",
            "--marker",
            marker,
            "--summary-file",
            str(summary_path),
            "--quiet",
        ]
        scrape: dict[str, Any] = {}
        stop = threading.Event()
        scraper = None
        if setup.scrape_port:
            scraper = threading.Thread(
                target=_scrape_loop, args=(setup.scrape_port, stop, scrape), daemon=True
            )
            scraper.start()
        t0 = time.monotonic()
        proc = subprocess.run(
            argv,
            check=False,
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=float(case.emit.get("duration", 2.5)) + 60,
        )
        run_s = time.monotonic() - t0
        stop.set()
        if scraper:
            scraper.join(timeout=3)
        (workdir / "stdout.txt").write_text(proc.stdout)
        (workdir / "stderr.txt").write_text(proc.stderr)
        summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.exists() else {}

        seen: dict[str, bool] = {}
        obs: dict[str, Any] = {"exit_code": proc.returncode, "run_seconds": round(run_s, 2)}
        if setup.collector:
            counts = _wait_collector(setup.collector, 6)
            obs["collector"] = {k: dict(v) for k, v in counts.items()}
            seen["collector"] = (
                total(counts.get("accepted_metrics")) + total(counts.get("accepted_logs"))
            ) > 0
        if setup.collector_b:
            counts_b = _wait_collector(setup.collector_b, 4)
            obs["collector_b"] = {k: dict(v) for k, v in counts_b.items()}
            seen["collector_b"] = (
                total(counts_b.get("accepted_metrics")) + total(counts_b.get("accepted_logs"))
            ) > 0
        if setup.proxy:
            time.sleep(0.3)
            stats = setup.proxy.stats()
            counters = stats.get("counters", stats)
            accepted = counters.get("accepted", {})
            obs["proxy"] = {
                "accepted": accepted,
                "rejected": counters.get("rejected", {}),
                "requests": counters.get("requests", {}),
            }
            seen["proxy"] = (
                sum(int(n) for n in accepted.values()) > 0 if isinstance(accepted, dict) else False
            )
        if setup.prometheus:
            series: list[dict[str, Any]] = []
            end = time.monotonic() + 4
            while time.monotonic() < end:
                # A range selector: once the emulator has exited, Prometheus marks its series stale and an
                # instant query would no longer show what was scraped.
                series = setup.prometheus.query('{__name__=~"claude_code_.+"}[10m]')
                if series:
                    break
                time.sleep(0.5)
            obs["prometheus"] = {
                "series": len(series),
                "names": sorted({s["metric"].get("__name__", "") for s in series}),
            }
            seen["prometheus"] = bool(series)
        if setup.scrape_port:
            obs["scrape"] = {
                "names": scrape.get("names", []),
                "sample": scrape.get("sample", "")[:200],
                "error": None if scrape.get("names") else scrape.get("errors"),
            }
            seen["scrape"] = bool(scrape.get("names"))
        stdout_hits = proc.stdout.count('"claude_code.')
        obs["stdout_claude_code_items"] = stdout_hits
        seen["stdout"] = stdout_hits > 0

        exporters = summary.get("exporters", [])
        otlp = [e for e in exporters if "/otlp" in e["name"]]
        sent = sum(e["sent"] for e in otlp)
        failed = sum(e["failed"] for e in otlp)
        in_flight = sum(e.get("in_flight", 0) for e in otlp)
        config_error = proc.returncode == 2 and CONFIG_ERROR_MARK in proc.stderr
        if config_error:
            outcome = "config_error"
        elif any(seen.values()):
            outcome = "delivered"
        elif sent:
            outcome = "sent_not_stored"
        elif failed:
            outcome = "failed"
        elif in_flight:
            outcome = "pending"
        else:
            outcome = "nothing"
        metrics_exp = next(
            (e for e in exporters if e["name"].startswith("metrics/") and "prometheus" not in e["name"]), None
        )
        failing = [e for e in otlp if e["failed"]]
        obs.update(
            {
                "outcome": outcome,
                "seen": seen,
                "exporters": [
                    {
                        k: e.get(k)
                        for k in (
                            "name",
                            "sent",
                            "failed",
                            "retried",
                            "in_flight",
                            "attempts",
                            "first_export_s",
                            "max_export_s",
                        )
                    }
                    for e in exporters
                ],
                "retried": sum(e["retried"] for e in otlp),
                "gives_up_s": max((e["max_export_s"] or 0 for e in failing), default=None),
                "first_export_s": metrics_exp["first_export_s"] if metrics_exp else None,
                "metric_exports": (metrics_exp["attempts"] + metrics_exp.get("in_flight", 0))
                if metrics_exp
                else 0,
                "notices": [f"{n['variable']}: {n['message']}" for n in summary.get("notices", [])],
                "messages": summary.get("sdk_messages", [])[:12],
                "startup_error": _startup_error(proc.stderr) if config_error else None,
                "settings": summary.get("settings"),
            }
        )
        if proc.returncode not in (0, 2):
            obs["stderr_tail"] = proc.stderr[-800:]
        return obs
    finally:
        setup.stop()


def run_case(case: Case, root: Path) -> CaseResult:
    workdir = root / case.id
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        obs = observe_case(case, workdir)
    except LabError as exc:
        return CaseResult(
            case,
            False,
            {"outcome": "harness_error"},
            [str(exc)],
            time.monotonic() - t0,
            workdir,
            error=str(exc),
        )
    except (OSError, subprocess.SubprocessError, requests.RequestException, json.JSONDecodeError) as exc:
        return CaseResult(
            case,
            False,
            {"outcome": "harness_error"},
            [f"{type(exc).__name__}: {exc}"],
            time.monotonic() - t0,
            workdir,
            error=str(exc),
        )
    mism = compare(case, obs)
    return CaseResult(case, not mism, obs, mism, time.monotonic() - t0, workdir)


def run_matrix(
    cases: list[Case], root: Path, jobs: int = 4, on_done: Callable[[CaseResult], None] | None = None
) -> list[CaseResult]:
    """Parallel cases first (each fully isolated), then the exclusive ones (fixed ports) one by one."""
    results: dict[str, CaseResult] = {}
    lock = threading.Lock()

    def one(case: Case) -> None:
        res = run_case(case, root)
        with lock:
            results[case.id] = res
            if on_done:
                on_done(res)

    parallel = [c for c in cases if not c.exclusive]
    exclusive = [c for c in cases if c.exclusive]
    # Slow cases first so the pool's tail is short.
    parallel.sort(key=lambda c: -float(c.emit.get("duration", 2.5)))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, parallel))
    for c in exclusive:
        one(c)
    return [results[c.id] for c in cases]
