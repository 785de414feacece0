"""Benchmark: a scripted 10-turn session of the real Claude Code against a native module-1 lab (model stub
and proxy), wall time per `labctl claude` run, and the model stub's own time per turn.

Goals (issue 10): the 10-turn session finishes in <= 20 s wall; the stub adds <= 5 ms per turn: its own
time from reading a request to the last byte of its answer, as it reports on /stub/stats. The goal is
judged on the stub's CPU time per turn (mean); its wall time is printed too: on a loaded machine that
includes the stub waiting for a CPU, which is the machine's time, not the stub's.
Needs the pinned client in the lab's cache (`labctl install claude-code`).

    python tests/benchmarks/claude_session.py [--runs 3] [--scenario ten-turns]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
from timed_cli import timed_labctl

from labctl.modelstub.scenario import load_dir
from labctl.state import LabState

REPO = Path(__file__).resolve().parents[2]
GOALS = {"session_wall_s": 20.0, "stub_ms_per_turn": 5.0}


def labctl(state_dir: Path, *args: str) -> tuple[float, str]:
    return timed_labctl(state_dir, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="ten-turns")
    args = parser.parse_args()
    turns = len(load_dir(REPO / "lab" / "scenarios")[args.scenario].turns)
    walls: list[float] = []
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        state_dir = Path(tmp) / "lab"
        try:
            labctl(state_dir, "--runtime", "native", "up", "module-1", "--free-ports")
            lab = LabState.load(state_dir)
            stats_url = lab.url("model-stub", "api") + "/stub/stats"
            for _ in range(args.runs):
                before = requests.get(stats_url, timeout=5).json()["turns"]
                took, _out = labctl(state_dir, "claude", "--scenario", args.scenario)
                stats = requests.get(stats_url, timeout=5).json()
                served = stats["turns"] - before
                if served != turns:
                    raise SystemExit(f"the stub served {served} scripted turns, the scenario has {turns}")
                walls.append(took)
            # The stub keeps its last 1000 per-turn timings; every one of them is from these runs.
            log = lab.data_dir("model-stub") / "requests.jsonl"
            answered = sum(1 for line in log.read_text().splitlines() if json.loads(line)["kind"] == "turn")
            stats = requests.get(stats_url, timeout=5).json()
            wall, cpu = stats["stub_ms_per_turn"], stats["stub_cpu_ms_per_turn"]
        finally:
            subprocess.run(
                [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "down"],
                capture_output=True,
                check=False,
                cwd=REPO,
            )
    print(f"real Claude Code, scenario {args.scenario} ({turns} turns), {args.runs} run(s), native module-1")
    verdict = "meets goal" if max(walls) <= GOALS["session_wall_s"] else "MISSES goal"
    print(
        f"  session wall   {', '.join(f'{w:.2f}' for w in walls)} s  (median {statistics.median(walls):.2f} s; "
        f"goal <= {GOALS['session_wall_s']:g} s: {verdict})"
    )
    verdict = "meets goal" if cpu["mean"] <= GOALS["stub_ms_per_turn"] else "MISSES goal"
    print(
        f"  stub CPU/turn  mean {cpu['mean']:.3f} ms (goal <= {GOALS['stub_ms_per_turn']:g} ms: {verdict}); "
        f"p50 {cpu['p50']:.3f}, p95 {cpu['p95']:.3f}, max {cpu['max']:.3f} ms over {answered} turns"
    )
    print(
        f"  stub wall/turn mean {wall['mean']:.3f} ms; p50 {wall['p50']:.3f}, p95 {wall['p95']:.3f}, "
        f"max {wall['max']:.3f} ms"
    )
    print(
        f"  machine load   {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min) on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
