"""Benchmark: native `labctl up module-3` cold-to-healthy, the lab's idle RSS, and `labctl down`.

Goals (issue: lab foundation): up <= 10 s, down <= 3 s, whole lab at idle <= 500 MB RSS.
Binaries must be cached first (`labctl install collector` and `labctl install prometheus`).

    python tests/benchmarks/foundation_up_down.py [--idle-seconds 15] [--runs 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from timed_cli import timed_labctl

from labctl.runtimes import process
from labctl.state import LabState

REPO = Path(__file__).resolve().parents[2]

GOALS = {"up_s": 10.0, "down_s": 3.0, "idle_rss_mb": 500.0}


def labctl(state_dir: Path, *args: str) -> float:
    return timed_labctl(state_dir, *args)[0]


def lab_rss_mb(lab: LabState) -> float:
    """Sum of RSS over every lab process and its children, in MB."""
    total = 0
    for service in ("proxy", "collector", "prometheus", "grafana"):
        rec = process.read_record(lab.pid_path(service))
        proc = rec.process() if rec else None
        if proc is None:
            continue
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total / 1e6


def one_run(idle_seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        state_dir = Path(tmp) / "lab"
        try:
            up_s = labctl(state_dir, "--runtime", "native", "up", "module-3", "--free-ports")
            lab = LabState.load(state_dir)
            peak = 0.0
            deadline = time.monotonic() + idle_seconds
            while time.monotonic() < deadline:
                peak = max(peak, lab_rss_mb(lab))
                time.sleep(0.5)
            down_s = labctl(state_dir, "down")
        finally:
            if LabState.exists(state_dir):
                subprocess.run(
                    [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "down"], check=False
                )
    return {"up_s": up_s, "down_s": down_s, "idle_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=15.0, help="how long to sample idle RSS")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    results = [one_run(args.idle_seconds) for _ in range(args.runs)]
    print(f"native module-3, {args.runs} run(s), idle sampled for {args.idle_seconds:.0f}s")
    for key, goal in GOALS.items():
        values = [r[key] for r in results]
        worst = max(values)
        unit = "MB" if key.endswith("mb") else "s"
        verdict = "meets goal" if worst <= goal else "MISSES goal"
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {key:12s} {shown} {unit}  (goal <= {goal:g} {unit}: {verdict})")


if __name__ == "__main__":
    main()
