"""Benchmark: one emulator process sustaining many concurrent Claude Code sessions at a 1 s export interval.

Goal (issue 4): 300 concurrent sessions at OTEL_METRIC_EXPORT_INTERVAL=1000 from one process. Sends to the
lab's real Collector (otelcol-lab, started here on free ports) and prints the achieved action rate against the
planned one, the scheduler's worst lag, the CPU the process used, and what the exporters delivered.

    python tests/benchmarks/emulator_sessions.py [--sessions 300] [--duration 30] [--rate 6] [--protocol grpc]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from labctl.emulator.runner import EmitOptions, Emulator
from labctl.emulator.settings import load_settings
from labctl.matrix.receivers import Collector


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=6.0, help="prompts per minute per session")
    ap.add_argument("--protocol", default="grpc", choices=["grpc", "http/protobuf", "http/json"])
    ap.add_argument("--interval-ms", type=int, default=1000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        collector = Collector(Path(tmp) / "collector").start()
        try:
            endpoint = f"http://{collector.grpc_addr if args.protocol == 'grpc' else collector.http_addr}"
            settings = load_settings(
                {
                    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
                    "OTEL_METRICS_EXPORTER": "otlp",
                    "OTEL_LOGS_EXPORTER": "otlp",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": args.protocol,
                    "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                    "OTEL_METRIC_EXPORT_INTERVAL": str(args.interval_ms),
                    "OTEL_LOGS_EXPORT_INTERVAL": "1000",
                }
            )
            emulator = Emulator(
                settings,
                EmitOptions(
                    sessions=args.sessions,
                    duration_s=args.duration,
                    rate_per_min=args.rate,
                    seed=1,
                    marker="bench",
                    quiet_sdk=True,
                ),
            )
            planned = sum(len(p.actions) for p in emulator.plans)
            t0 = time.monotonic()
            summary = emulator.run()
            wall = time.monotonic() - t0
            time.sleep(2)
            received = collector.received()
        finally:
            collector.stop()

    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"sessions            {args.sessions} concurrent, {args.duration:g}s, {args.rate:g} prompts/min each, "
        f"metric interval {args.interval_ms} ms, {args.protocol}"
    )
    print(
        f"actions             {summary['actions']} of {planned} planned "
        f"({summary['actions_per_second']}/s achieved, {planned / args.duration:.1f}/s planned)"
    )
    print(
        f"telemetry           {summary['metric_increments']} counter increments, {summary['events']} events"
    )
    print(f"scheduler max lag   {summary['max_lag_seconds']} s (how late the worst action was played)")
    print(
        f"CPU                 {summary['cpu_seconds']} s over {summary['run_seconds']} s = "
        f"{summary['cpu_percent']}% of one core (run incl. exit flush: {wall:.1f}s; "
        f"max RSS {usage.ru_maxrss / 1024:.0f} MiB)"
    )
    for e in summary["exporters"]:
        print(
            f"exporter            {e['name']}: sent {e['sent']}, failed {e['failed']}, retried {e['retried']}, "
            f"items {e['items_sent']}, slowest export {e['max_export_s']} s"
        )
    accepted = {k: sum(v.values()) for k, v in received.items() if k.startswith("accepted")}
    print(f"collector accepted  {accepted}")
    ok = (
        summary["actions"] == planned
        and summary["max_lag_seconds"] < 1.0
        and all(e["failed"] == 0 for e in summary["exporters"])
    )
    print(
        "verdict             "
        + ("sustained" if ok else "NOT sustained (dropped actions, lag >= 1 s or failures)")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
