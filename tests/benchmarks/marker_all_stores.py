"""Benchmark: how long after `labctl check`'s marker is sent it is visible in each of the three stores.

The marker (labctl/checks/marker.py) is one Claude Code-like session: counters, one event, one span, all
with the resource attribute lab.marker. It is sent to the proxy like a client's export; then the three
stores are polled every 50 ms until each shows it:
  Prometheus    claude_code_session_count_total{lab_marker="..."}   (pulled: the 5 s scrape interval)
  VictoriaLogs  LogsQL lab.marker:"..."                              (pushed: the Collector's 1 s batch)
  Jaeger        /api/traces?tags={"lab.marker":"..."}                (pushed: the Collector's 1 s batch)

Goal (issue 15): visible in all three within the export interval + 2 s. A store's "export interval" is
what paces its data after the client's export: the scrape interval for Prometheus, the Collector's batch
timeout for the two pushed stores. Needs cached binaries (`labctl install all`).

    python tests/benchmarks/marker_all_stores.py [--rounds 5] [--state-dir DIR (a running module-3+ lab)]
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

import psutil
import requests

from labctl.checks.marker import new_marker, send_marker
from labctl.checks.traces_store import stored_spans
from labctl.state import LabState

SCRAPE_S = 5.0  # lab/prometheus/prometheus.yml scrape_interval
BATCH_S = 1.0  # collector-configs/base.yaml batch.timeout
SLACK_S = 2.0
GOALS = {"prometheus": SCRAPE_S + SLACK_S, "victorialogs": BATCH_S + SLACK_S, "jaeger": BATCH_S + SLACK_S}


def visible(lab: LabState, marker: str) -> dict[str, bool]:
    prom = requests.get(
        lab.url("prometheus", "web") + "/api/v1/query",
        params={"query": f'claude_code_session_count_total{{lab_marker="{marker}"}}'},
        timeout=2,
    ).json()
    logs = requests.post(
        lab.url("victorialogs", "http") + "/select/logsql/query",
        data={"query": f'lab.marker:"{marker}" | stats count() n'},
        timeout=2,
    ).text
    traces = requests.get(
        lab.url("jaeger", "query") + "/api/traces",
        params={"service": "claude-code", "tags": json.dumps({"lab.marker": marker})},
        timeout=2,
    )
    return {
        "prometheus": bool(prom.get("data", {}).get("result")),
        "victorialogs": bool(logs.strip()) and int(json.loads(logs.splitlines()[0]).get("n", 0)) > 0,
        "jaeger": traces.ok and stored_spans(traces.text, marker) > 0,
    }


def one_round(lab: LabState, timeout_s: float = 20.0) -> dict[str, float | None]:
    marker = new_marker()
    sent = send_marker(lab.url("proxy", "otlp_grpc"), marker, timeout_s=3)
    if not sent.sent_ok:
        sys.exit(f"the marker was not accepted: {sent.error}")
    t0 = time.monotonic()
    seen: dict[str, float | None] = dict.fromkeys(GOALS)
    while time.monotonic() - t0 < timeout_s and None in seen.values():
        now = visible(lab, marker)
        for store, ok in now.items():
            if ok and seen[store] is None:
                seen[store] = time.monotonic() - t0
        time.sleep(0.05)
    return seen


def labctl(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)


def run(state_dir: Path, rounds: int) -> list[dict[str, float | None]]:
    lab = LabState.load(state_dir)
    # A first marker warms every path (connections, the Collector's exporters) and is not counted.
    one_round(lab)
    return [one_round(lab) for _ in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--state-dir", type=Path, help="a running module-3 or module-4 lab to measure")
    args = parser.parse_args()
    if args.state_dir:
        results = run(args.state_dir, args.rounds)
    else:
        with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
            state_dir = Path(tmp) / "lab"
            try:
                up = labctl(state_dir, "--runtime", "native", "up", "module-3", "--free-ports")
                if up.returncode != 0:
                    sys.exit(f"up failed:\n{up.stderr}")
                results = run(state_dir, args.rounds)
            finally:
                if LabState.exists(state_dir):
                    labctl(state_dir, "down")
    load = ", ".join(f"{x:.1f}" for x in psutil.getloadavg())
    print(f"marker → visible in each store, {args.rounds} rounds (after one warm-up); load {load}")
    print(f"{'store':<13} {'median':>7} {'max':>7} {'goal':>6}  verdict")
    worst_ok = True
    for store, goal in GOALS.items():
        times = [r[store] for r in results]
        missing = sum(1 for t in times if t is None)
        found = [t for t in times if t is not None]
        med = f"{statistics.median(found):.2f}s" if found else "-"
        top = f"{max(found):.2f}s" if found else "-"
        ok = not missing and max(found) <= goal
        worst_ok &= ok
        note = "ok" if ok else ("MISSED" if missing else "over")
        print(
            f"{store:<13} {med:>7} {top:>7} {goal:>5.1f}s  {note}"
            + (f" ({missing} never seen)" if missing else "")
        )
    print("all three within their goal" if worst_ok else "at least one store missed its goal")


if __name__ == "__main__":
    main()
