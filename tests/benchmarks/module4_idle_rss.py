"""Benchmark: the whole native module-4 lab at idle (every service, Alertmanager, the notifications view,
VictoriaLogs, Jaeger and the relays included), per service and in total, and how long a test notification and
the marker's event take to arrive.

Goals (issue 15): whole module-4 lab idle RSS <= 700 MB; the marker visible in the event and trace stores within the
export interval + 2 s. Binaries must be cached first (`labctl install all`; Grafana runs only where its
binary is installed).

    python tests/benchmarks/module4_idle_rss.py [--idle-seconds 15]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from labctl.model import load_model
from labctl.runtimes import process
from labctl.state import LabState

GOAL_MB = 700.0


def service_rss_mb(lab: LabState) -> dict[str, float]:
    """RSS of each lab service's process and its children, in MB."""
    out: dict[str, float] = {}
    for service in load_model().services:
        rec = process.read_record(lab.pid_path(service))
        proc = rec.process() if rec else None
        if proc is None:
            continue
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        out[service] = total / 1e6
    return out


def labctl(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=15.0, help="how long to sample idle RSS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        state_dir = Path(tmp) / "lab"
        try:
            started = time.monotonic()
            up = labctl(state_dir, "--runtime", "native", "up", "module-4", "--free-ports")
            up_s = time.monotonic() - started
            if up.returncode != 0:
                sys.exit(f"up failed:\n{up.stderr}")
            lab = LabState.load(state_dir)
            peak: dict[str, float] = {}
            deadline = time.monotonic() + args.idle_seconds
            while time.monotonic() < deadline:
                for service, mb in service_rss_mb(lab).items():
                    peak[service] = max(peak.get(service, 0.0), mb)
                time.sleep(0.5)
            check = labctl(state_dir, "check", "--json")
            report = json.loads(check.stdout or "{}")
        finally:
            if LabState.exists(state_dir):
                labctl(state_dir, "down")
    load = ", ".join(f"{x:.1f}" for x in psutil.getloadavg())
    print(f"native module-4 (up in {up_s:.1f}s), idle sampled for {args.idle_seconds:.0f}s; load {load}")
    for service, mb in sorted(peak.items(), key=lambda kv: -kv[1]):
        print(f"  {service:16s} {mb:7.1f} MB")
    total = sum(peak.values())
    verdict = "meets goal" if total <= GOAL_MB else "MISSES goal"
    print(f"  {'total':16s} {total:7.1f} MB  (goal <= {GOAL_MB:g} MB: {verdict})")
    for row in report.get("results", []):
        if row["name"] in ("event stored", "trace stored", "test notification"):
            waited = re.search(r"waited (\d+\.\d)s", " ".join(row["evidence"]))
            extra = f", waited {waited.group(1)} s after the dashboards" if waited else ""
            print(f"  {row['name']:18s} {row['verdict']}{extra}")


if __name__ == "__main__":
    main()
