"""Benchmark: wall time of the full configuration matrix on this machine.

Goal (issue 4): at least 40 cases in at most 5 minutes on 2 cores. Runs `labctl matrix run` (all cases, or a
filter) exactly as a user would and prints the wall time, the slowest cases and the per-case average.

    python tests/benchmarks/matrix_wall_time.py [--jobs 4] [--filter ci]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOAL_S, GOAL_CASES = 300, 40


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--filter", action="append", default=[])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "labctl",
            "matrix",
            "run",
            "--report-dir",
            tmp,
            "--jobs",
            str(args.jobs),
            "--json",
        ]
        for f in args.filter:
            cmd += ["--filter", f]
        t0 = time.monotonic()
        run = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"}
        )
        wall = time.monotonic() - t0
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(run.stderr[-3000:])
        return 2
    cases = report["cases"]
    print(
        f"cases               {len(cases)} ({report['expected']} as expected, {report['unexpected']} unexpected)"
    )
    print(
        f"wall time           {wall:.1f} s with --jobs {args.jobs} on {os.cpu_count()} cores "
        f"(goal: >= {GOAL_CASES} cases in <= {GOAL_S} s)"
    )
    print(
        f"case time           {sum(c['seconds'] for c in cases):.1f} s summed, "
        f"{sum(c['seconds'] for c in cases) / max(1, len(cases)):.1f} s average"
    )
    for c in sorted(cases, key=lambda c: -c["seconds"])[:5]:
        print(f"  slowest           {c['id']}: {c['seconds']} s")
    for c in cases:
        if not c["ok"]:
            print(f"  unexpected        {c['id']}: {'; '.join(c['mismatches'])}")
    met = len(cases) >= GOAL_CASES and wall <= GOAL_S
    print("verdict             " + ("goal met" if met else "goal NOT met"))
    return 0 if met and run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
