"""Benchmark: a scripted 10-turn session of the real Claude Code against a native module-1 lab (model stub
and proxy), wall time per `labctl claude` run, and the model stub's own time per turn.

Goals (issue 10): the 10-turn session finishes in <= 20 s wall; the stub adds <= 5 ms per turn (its time
from reading a request to the last byte of its answer, as it reports on /stub/stats).
Needs the pinned client in the lab's cache (`labctl install claude-code`).

    python tests/benchmarks/claude_session.py [--runs 3] [--scenario ten-turns]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from labctl.modelstub.scenario import load_dir
from labctl.state import LabState

REPO = Path(__file__).resolve().parents[2]
GOALS = {"session_wall_s": 20.0, "stub_ms_per_turn": 5.0}


def labctl(state_dir: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "labctl", "--state-dir", str(state_dir), *args],
                            capture_output=True, text=True, cwd=REPO, check=False)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return took, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="ten-turns")
    args = parser.parse_args()
    turns = len(load_dir(REPO / "lab" / "scenarios")[args.scenario].turns)
    walls: list[float] = []
    per_turn: list[float] = []
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        state_dir = Path(tmp) / "lab"
        try:
            labctl(state_dir, "--runtime", "native", "up", "module-1", "--free-ports")
            lab = LabState.load(state_dir)
            stats_url = lab.url("model-stub", "api") + "/stub/stats"
            for _ in range(args.runs):
                before = requests.get(stats_url, timeout=5).json()["turns"]
                wall, _out = labctl(state_dir, "claude", "--scenario", args.scenario)
                stats = requests.get(stats_url, timeout=5).json()
                served = stats["turns"] - before
                if served != turns:
                    raise SystemExit(f"the stub served {served} scripted turns, the scenario has {turns}")
                walls.append(wall)
            # The stub keeps its last 1000 per-turn timings; every one of them is from these runs.
            log = lab.data_dir("model-stub") / "requests.jsonl"
            answered = sum(1 for line in log.read_text().splitlines() if json.loads(line)["kind"] == "turn")
            stats = requests.get(stats_url, timeout=5).json()["stub_ms_per_turn"]
            per_turn = [stats["mean"], stats["p50"], stats["max"]]
        finally:
            subprocess.run([sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "down"],
                           capture_output=True, check=False, cwd=REPO)
    print(f"real Claude Code, scenario {args.scenario} ({turns} turns), {args.runs} run(s), native module-1")
    verdict = "meets goal" if max(walls) <= GOALS["session_wall_s"] else "MISSES goal"
    print(f"  session wall   {', '.join(f'{w:.2f}' for w in walls)} s  (median {statistics.median(walls):.2f} s; "
          f"goal <= {GOALS['session_wall_s']:g} s: {verdict})")
    mean, p50, worst = per_turn
    verdict = "meets goal" if worst <= GOALS["stub_ms_per_turn"] else "MISSES goal"
    print(f"  stub per turn  mean {mean:.3f} ms, p50 {p50:.3f} ms, max {worst:.3f} ms over {answered} turns  "
          f"(goal <= {GOALS['stub_ms_per_turn']:g} ms: {verdict})")


if __name__ == "__main__":
    main()
