"""Benchmark: the logging proxy side by side with the real Collector receiving the same load.

  1. Ingest throughput (data points/s) over HTTP/protobuf and gRPC, proxy (module-1 sink, lab contract in
     observe mode, inspector on) and the lab Collector (base.yaml), with the ratio, in two shapes:
     `points`: one metric with 1, 100 or 1000 points per request (how an SDK batches one instrument);
     `metrics`: 100 or 1000 metrics of one point each per request (how a load generator such as the
     Collector project's telemetrygen sends, where the per-metric cost shows).
     Also the proxy without a contract, to show what contract evaluation + inspection cost.
  2. Latency at classroom load: 30 sessions each exporting metrics and events every second; p50/p99 of
     the proxy's answer vs the Collector's, and the difference (what the proxy adds).
  3. Memory under a 10x burst: 300 sessions' worth of exports per second; the proxy's peak RSS.

Goals: >= 0.5x the Collector on 1000-point batches (issue 3) and on 100- and 1000-metric requests
(issue 11); p99 added <= 5 ms at 30 sessions/s;
memory bounded under a 10x burst. Needs the Collector binary (`labctl install collector`).
The proxy uses three processes: its JSON Lines log is written by a child, and gRPC calls are taken by
another (the gRPC front, which relays each request to the proxy and its answer back), both free to run
on the other core. The gRPC front is the Go one where it is built (`labctl install grpc-front`), else
the Python one; --python-front adds a proxy with the Python front, side by side. The CPU and memory figures include them. On a machine with one free core the
proxy's figures drop accordingly. A proxy's throughput round ends only when its log holds every payload
it took: a writer that lags behind the load is not counted as keeping up.
Each request here repeats the same series, as a load generator's do from one interval to the next: the
proxy and its log writer recognise a one-point metric they have met before by all its bytes but its
point's times and value (labctl.otlp.wire.QuickMetrics), so a load whose series change with every
request costs the proxy more per point than this shows.

    python tests/benchmarks/proxy_throughput.py [--seconds 2] [--rounds 3] [--concurrency 8]
        [--only throughput|latency|classroom|burst ...] [--batches 1,100,1000] [--metrics 100,1000]
        [--python-front]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
import grpc
import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "proxy"))

from proxy_collector import Collector  # noqa: E402 (tests/proxy is on the path now)
from proxy_harness import CONTRACT, free_port  # noqa: E402 (tests/proxy is on the path now)
from proxy_payloads import events, one_point_metrics, token_usage  # noqa: E402 (tests/proxy is on the path now)
from proxy_process import ProxyProcess  # noqa: E402

METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PB = {"Content-Type": "application/x-protobuf"}


class Target:
    def __init__(
        self, name: str, http: str, grpc_addr: str, pid: int, proxy: ProxyProcess | None = None
    ) -> None:
        self.name, self.http, self.grpc, self.pid = name, http, grpc_addr, pid
        self.proxy = proxy  # a proxy: its JSON Lines log must catch up before a round counts as done
        self.dropped = 0  # records its log left out so far (its writer fell too far behind)

    def log_catch_up(self) -> float:
        """Seconds until the proxy's log writer has written every payload received (0 for the Collector).
        The writer is a child process that may lag behind a burst; its catch-up is part of the work. A
        writer that fell too far behind leaves payloads out (counted in `dropped`): those are never
        written, so then the wait ends when nothing is left to hand over."""
        if self.proxy is None:
            return 0.0
        start = time.perf_counter()
        while True:
            with urllib.request.urlopen(self.proxy.admin_request("/api/overview"), timeout=10) as resp:
                overview = json.loads(resp.read())
            log = overview["log"]
            if log["written_through"] >= overview["last_seq"]:
                return time.perf_counter() - start
            if log["dropped_records"] > self.dropped and log["pending_bytes"] == 0:
                self.dropped = log["dropped_records"]
                return time.perf_counter() - start
            if time.perf_counter() - start > 120:
                raise RuntimeError(f"the {self.name} log writer did not catch up within 120s: {log}")
            time.sleep(0.01)


def _body(shape: str, size: int) -> bytes:
    return (token_usage(size) if shape == "points" else one_point_metrics(size)).SerializeToString()


async def _throughput(
    target: Target, protocol: str, shape: str, points: int, seconds: float, conc: int
) -> tuple[int, float]:
    """(points sent, seconds taken)."""
    body = _body(shape, points)
    done = 0
    stop_at = time.perf_counter() + seconds
    if protocol == "grpc":
        channel = grpc.aio.insecure_channel(target.grpc)
        call = channel.unary_unary(METHOD)

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await call(body, timeout=10)
                done += points

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - start
        await channel.close()
    else:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < stop_at:
                    async with s.post(target.http + "/v1/metrics", data=body, headers=PB) as r:
                        await r.read()
                        assert r.status == 200, r.status
                    done += points

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conc)))
            elapsed = time.perf_counter() - start
    return done, elapsed


async def _latencies(target: Target, protocol: str, points: int, n: int) -> list[float]:
    """One client, one request at a time: the time each answer takes, in ms."""
    body = token_usage(points).SerializeToString()
    out: list[float] = []
    if protocol == "grpc":
        channel = grpc.aio.insecure_channel(target.grpc)
        call = channel.unary_unary(METHOD)
        await call(body, timeout=10)  # connect outside the measurement
        for _ in range(n):
            t0 = time.perf_counter()
            await call(body, timeout=10)
            out.append((time.perf_counter() - t0) * 1000)
        await channel.close()
        return out
    async with aiohttp.ClientSession() as s:
        for i in range(n + 1):
            t0 = time.perf_counter()
            async with s.post(target.http + "/v1/metrics", data=body, headers=PB) as r:
                await r.read()
            if i:
                out.append((time.perf_counter() - t0) * 1000)
    return out


async def _classroom(target: Target, sessions: int, seconds: float) -> list[float]:
    """Each session sends one metrics request (28 points) and one events request (5) per second over HTTP."""
    latencies: list[float] = []
    metrics_body = token_usage(28).SerializeToString()
    events_body = events(5).SerializeToString()
    async with aiohttp.ClientSession() as s:

        async def session(i: int) -> None:
            await asyncio.sleep(i / sessions)  # spread sessions over the second, like real clients
            next_at = time.perf_counter()
            end = next_at + seconds
            while next_at < end:
                for path, body in (("/v1/metrics", metrics_body), ("/v1/logs", events_body)):
                    t0 = time.perf_counter()
                    async with s.post(target.http + path, data=body, headers=PB) as r:
                        await r.read()
                    latencies.append((time.perf_counter() - t0) * 1000)
                next_at += 1.0
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        await asyncio.gather(*(session(i) for i in range(sessions)))
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a target and its children (the proxy's log writer and gRPC front)."""
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    total = t.user + t.system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system
    return total


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def start_proxy(
    workdir: Path, contract: bool, upstream: str = "", env: dict[str, str] | None = None
) -> ProxyProcess:
    raw = {
        "listen": {
            "otlp_grpc": f"127.0.0.1:{free_port()}",
            "otlp_http": f"127.0.0.1:{free_port()}",
            "admin": f"127.0.0.1:{free_port()}",
        },
        "data_dir": str(workdir / "data"),
        "contract": {"path": str(CONTRACT) if contract else "", "mode": "observe"},
        "inspect": {"console": "off"},
        "upstream": {"endpoint": upstream, "retry": {"initial_interval": "1s", "max_interval": "5s"}},
    }
    workdir.mkdir(parents=True, exist_ok=True)
    return ProxyProcess(yaml.safe_load(yaml.safe_dump(raw)), workdir, env=env).start()


def _rss(proc: psutil.Process) -> int:
    """The proxy's memory with its children (the JSON Lines writer and the gRPC front)."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def burst_report(name: str, target: Target) -> None:
    print(f"\n# 10x burst: 300 sessions x (metrics + events) per second for 5s, {name}")
    proc = psutil.Process(target.pid)
    before = _rss(proc)
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss(proc))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    burst = asyncio.run(_classroom(target, 300, 5))
    time.sleep(1)
    stop.set()
    sampler.join()
    after = _rss(proc)
    print(
        f"requests={len(burst)} p50={pct(burst, 50):.2f} ms p99={pct(burst, 99):.2f} ms; proxy RSS with its "
        f"log writer before={before / 2**20:.0f} MiB peak={peak / 2**20:.0f} MiB after={after / 2**20:.0f} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds per cell (the median is shown)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--classroom-seconds", type=float, default=10.0)
    ap.add_argument(
        "--only",
        choices=("throughput", "latency", "classroom", "burst"),
        action="append",
        help="run only these parts (repeatable); default: all",
    )
    ap.add_argument(
        "--batches",
        default="1,100,1000",
        help="points per request (one metric) for throughput and latency; empty for none",
    )
    ap.add_argument(
        "--metrics", default="100,1000", help="one-point metrics per request for throughput; empty for none"
    )
    ap.add_argument(
        "--python-front",
        action="store_true",
        help="also a proxy whose gRPC front is the Python one (LABCTL_GRPC_FRONT=python), side by side",
    )
    args = ap.parse_args()
    parts = set(args.only or ("throughput", "latency", "classroom", "burst"))
    batches = [int(b) for b in args.batches.split(",") if b]
    shapes = [("points", b) for b in batches] + [("metrics", int(m)) for m in args.metrics.split(",") if m]
    tmp = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    (tmp / "collector").mkdir()
    collector = Collector(tmp / "collector").start()
    proxy = start_proxy(tmp / "proxy", contract=True)
    bare = start_proxy(tmp / "bare", contract=False)
    py_front = (
        start_proxy(tmp / "py-front", contract=True, env={"LABCTL_GRPC_FRONT": "python"})
        if args.python_front
        else None
    )
    try:
        targets = {
            "collector": Target(
                "collector",
                collector.endpoint("http"),
                f"127.0.0.1:{collector.grpc_port}",
                collector.proc.pid,
            ),
            "proxy": Target("proxy", proxy.http, proxy.raw["listen"]["otlp_grpc"], proxy.proc.pid, proxy),
            "proxy-no-contract": Target(
                "proxy-no-contract", bare.http, bare.raw["listen"]["otlp_grpc"], bare.proc.pid
            ),
        }
        if py_front is not None:
            targets["proxy-py-front"] = Target(
                "proxy-py-front",
                py_front.http,
                py_front.raw["listen"]["otlp_grpc"],
                py_front.proc.pid,
                py_front,
            )
        if "throughput" in parts:
            throughput(targets, shapes, args.seconds, args.concurrency, args.rounds)
        if "latency" in parts:
            latency(targets, batches)
        if "classroom" in parts:
            classroom(targets, args.classroom_seconds)
        if "burst" in parts:
            burst(tmp, targets)
    finally:
        proxy.stop()
        bare.stop()
        if py_front is not None:
            py_front.stop()
        collector.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def throughput(
    targets: dict[str, Target], shapes: list[tuple[str, int]], seconds: float, conc: int, rounds: int
) -> None:
    """Each cell is measured `rounds` times, the targets taking turns, and the medians are compared:
    a burst of other work on the machine then weighs on both sides instead of on one. On a shared
    machine the points/s follow the other users' load; the CPU time each target spends per 1000 points
    (its own and its children's) moves much less, so it is printed too, with its ratio."""
    print(
        f"# throughput, points/s (median of {rounds} rounds of {seconds:g}s, targets in turn, "
        f"{conc} concurrent clients)"
    )
    print("# shape: `N points` = one metric with N points; `N metrics` = N one-point metrics per request")
    print(
        f"{'protocol':14} {'shape':>12} {'collector':>11} {'proxy':>11} {'ratio':>6} {'proxy-no-contract':>18}"
        f"  CPU ms/1000 points: {'coll':>6} {'proxy':>6} {'ratio':>6}"
    )
    catch_up = 0.0  # the longest wait for a proxy's log writer after a round
    for protocol in ("http/protobuf", "grpc"):
        for shape, size in shapes:
            runs: dict[str, list[float]] = {name: [] for name in targets}
            cpu: dict[str, list[float]] = {name: [] for name in targets}  # CPU ms per 1000 points
            for _ in range(rounds):
                for name, t in targets.items():
                    before = cpu_seconds(t.pid)
                    points, elapsed = asyncio.run(_throughput(t, protocol, shape, size, seconds, conc))
                    lag = t.log_catch_up()
                    catch_up = max(catch_up, lag)
                    runs[name].append(points / (elapsed + lag))
                    cpu[name].append((cpu_seconds(t.pid) - before) * 1e6 / max(points, 1.0))
            r = {name: statistics.median(v) for name, v in runs.items()}
            c = {name: statistics.median(v) for name, v in cpu.items()}
            print(
                f"{protocol:14} {f'{size} {shape}':>12} {r['collector']:>11,.0f} {r['proxy']:>11,.0f} "
                f"{r['proxy'] / r['collector']:>6.2f} {r['proxy-no-contract']:>18,.0f}"
                f"  {'':20}{c['collector']:>6.1f} {c['proxy']:>6.1f} {c['collector'] / c['proxy']:>6.2f}"
            )
            if "proxy-py-front" in r:
                print(
                    f"{'':14} {'python front':>12} {'':>11} {r['proxy-py-front']:>11,.0f} "
                    f"{r['proxy-py-front'] / r['collector']:>6.2f} {'':>18}  {'':20}{'':>6} "
                    f"{c['proxy-py-front']:>6.1f} {c['collector'] / c['proxy-py-front']:>6.2f}"
                )
    print("# a proxy's round ends when its JSON Lines log holds every payload it took (a child writes it)")
    print(f"# the longest wait for that after the load stopped: {catch_up:.2f}s")
    for t in targets.values():
        if t.dropped:
            print(f"# {t.name}: its log writer fell behind and left {t.dropped:,} records out of the log")


def latency(targets: dict[str, Target], batches: list[int]) -> None:
    print("\n# latency per request, one client, sequential (ms): proxy vs Collector, and what the proxy adds")
    print(
        f"{'protocol':14} {'batch':>6} {'coll p50':>9} {'coll p99':>9} {'proxy p50':>10} {'proxy p99':>10} "
        f"{'added p50':>10} {'added p99':>10}"
    )
    for protocol in ("http/protobuf", "grpc"):
        for points in batches:
            n = 300 if points < 1000 else 100
            c = asyncio.run(_latencies(targets["collector"], protocol, points, n))
            p = asyncio.run(_latencies(targets["proxy"], protocol, points, n))
            print(
                f"{protocol:14} {points:>6} {pct(c, 50):>9.2f} {pct(c, 99):>9.2f} {pct(p, 50):>10.2f} "
                f"{pct(p, 99):>10.2f} {pct(p, 50) - pct(c, 50):>+10.2f} {pct(p, 99) - pct(c, 99):>+10.2f}"
            )


def classroom(targets: dict[str, Target], seconds: float) -> None:
    print(f"\n# classroom load: 30 sessions x (metrics + events) per second, {seconds:g}s, HTTP")
    lat = {name: asyncio.run(_classroom(targets[name], 30, seconds)) for name in ("collector", "proxy")}
    for name, values in lat.items():
        print(
            f"{name:10} requests={len(values):5} p50={pct(values, 50):6.2f} ms  p99={pct(values, 99):6.2f} ms"
        )
    print(
        f"added by the proxy: p50={pct(lat['proxy'], 50) - pct(lat['collector'], 50):+.2f} ms  "
        f"p99={pct(lat['proxy'], 99) - pct(lat['collector'], 99):+.2f} ms  (goal p99 added <= 5 ms)"
    )


def burst(tmp: Path, targets: dict[str, Target]) -> None:
    """Once against the module-1 sink, once with the upstream down (everything is spooled)."""
    down = start_proxy(tmp / "down", contract=True, upstream=f"http://127.0.0.1:{free_port()}")
    try:
        targets["proxy, upstream down"] = Target(
            "down", down.http, down.raw["listen"]["otlp_grpc"], down.proc.pid
        )
        for name in ("proxy", "proxy, upstream down"):
            burst_report(name, targets[name])
        s = down.stats()
        print(
            f"upstream down: spooled={sum(s['gauges']['spooled'].values())} items "
            f"({s['gauges']['spool_bytes'] / 2**20:.1f} MiB on disk), memory queue "
            f"{s['gauges']['queue_bytes'] / 2**20:.1f} of {s['gauges']['queue_max_bytes'] / 2**20:.0f} MiB"
        )
    finally:
        down.stop()


if __name__ == "__main__":
    main()
