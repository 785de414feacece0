"""One timed run of the real `labctl` CLI, shared by the benchmark scripts (run as scripts: this folder is
on their import path)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def timed_labctl(state_dir: Path, *args: str) -> tuple[float, str]:
    """Wall seconds and stdout of `labctl --state-dir STATE ARGS…`; a failure ends the benchmark with its output."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return took, result.stdout
