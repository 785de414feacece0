"""Benchmark: contract evaluation and inspection on the proxy's hot path (issue 3), in-process.

Prints points/s for a 1000-point ExportMetricsServiceRequest shaped like Claude Code's (8 metrics,
200 sessions, the token/cost series with all their attributes):
  - evaluate, first sight of every series (full attribute decoding);
  - evaluate, series seen before (what a proxy sees when clients re-export every interval), from the
    request's wire bytes as the proxy does, and from the parsed message alone (OTLP/JSON requests);
  - evaluate + building the records;
  - Inspector.observe (records, redaction, ring buffer, sessions, /metrics series, alerts), with the JSONL
    log written inline and without it (the proxy writes it in a child process).
The end-to-end comparison with the real Collector is tests/benchmarks/proxy_throughput.py.

    python tests/benchmarks/contract_evaluate.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from labctl.contract import Contract, default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, session_attrs
from labctl.proxy.inspect import Inspector


def batch(sessions: int = 200) -> object:
    """5 points per session (4 token types + cost): 1000 points for 200 sessions."""
    kinds = [
        ("claude_code.token.usage", {"type": t}) for t in ("input", "output", "cacheRead", "cacheCreation")
    ]
    kinds += [("claude_code.cost.usage", {})]
    out: list[Point] = []
    for name, extra in kinds:  # grouped by metric, as SDKs export them
        for s in range(sessions):
            out.append(
                Point(
                    name,
                    100 + s,
                    {
                        **session_attrs(f"bench-{s}"),
                        "model": "claude-sonnet-4-5",
                        "query_source": "main",
                        **extra,
                    },
                )
            )
    return metrics_request(out)


def rate(label: str, fn: Callable[[], object], points: int, seconds: float) -> float:
    """points/s by wall clock and by this process' CPU time (the fairer figure on a shared machine)."""
    fn()
    n = 0
    start, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    wall = (time.perf_counter() - start) / n
    cpu = (time.process_time() - cpu0) / n
    print(
        f"{label:<47} {wall * 1e3:7.2f} ms wall {points / wall:10,.0f} pts/s | "
        f"{cpu * 1e3:7.2f} ms CPU {points / cpu:10,.0f} pts/s"
    )
    return points / cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    contract = load_contract(default_contract_path())
    req = batch()
    n = sum(len(m.sum.data_points) for m in req.resource_metrics[0].scope_metrics[0].metrics)
    print(f"batch: {n} points, {len(req.resource_metrics[0].scope_metrics[0].metrics)} metrics")

    raw = req.SerializeToString()

    def first_sight() -> object:
        c = Contract(contract.spec)  # a fresh compiled contract: no series seen yet
        return c.evaluate("metrics", req, raw)

    pps_first = rate("evaluate, every series new", first_sight, n, args.seconds)
    pps = rate(
        "evaluate, series seen before (wire bytes)",
        lambda: contract.evaluate("metrics", req, raw),
        n,
        args.seconds,
    )
    rate(
        "evaluate, series seen before (message only)",
        lambda: contract.evaluate("metrics", req),
        n,
        args.seconds,
    )
    rate("evaluate + records", lambda: contract.evaluate("metrics", req, raw).records, n, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        # The proxy hands the JSONL log to a child process; here it is written inline to show its cost.
        ins = Inspector({"inspect": {"console": "off"}, "log": {"writer": "inline"}}, Path(tmp))
        rate(
            "evaluate + Inspector.observe (JSONL inline)",
            lambda: ins.observe("metrics", contract.evaluate("metrics", req, raw), {"protocol": "bench"}),
            n,
            args.seconds,
        )
        ins.close()
        ins = Inspector({"inspect": {"console": "off"}, "log": {"enabled": False}}, Path(tmp))
        rate(
            "evaluate + Inspector.observe (JSONL elsewhere)",
            lambda: ins.observe("metrics", contract.evaluate("metrics", req, raw), {"protocol": "bench"}),
            n,
            args.seconds,
        )
    print(
        f"\nevaluate on the hot path (CPU time): {pps:,.0f} points/s with known series, "
        f"{pps_first:,.0f} on first sight"
    )


if __name__ == "__main__":
    main()
