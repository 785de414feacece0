"""Benchmark: `labctl reload` of each service, and `labctl backup` / `labctl restore` of a lab holding
one hour of class data.

Goals (issue: operating the pipeline): each reload takes effect within 3 s; backup and restore of a lab
with 1 h of class data within 10 s each.

One hour of class data, made in seconds instead of an hour:
- Prometheus: a class of --students Claude Code sessions (default 25), each with the lab's counters
  (tokens by type, cost, active time, lines, sessions, commits, decisions) for two models, one sample
  every 5 s (the lab's scrape interval) over the last hour, written as OpenMetrics text and turned into
  TSDB blocks with `promtool tsdb create-blocks-from openmetrics` (Prometheus' own backfill) in the
  lab's data dir before `labctl up`. Values grow like real counters.
- The proxy: its JSON Lines log is filled with the records of a real 10 s `labctl emit` run of the
  same class, repeated to one hour's worth (360 times), before `labctl up`.

    python tests/benchmarks/ops_reload_backup.py [--students 25]

The binaries must be cached (`labctl install collector`, `labctl install prometheus`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from labctl.install import resolve_binary
from labctl.state import LabState

REPO = Path(__file__).resolve().parents[2]
GOALS = {"reload_s": 3.0, "backup_s": 10.0, "restore_s": 10.0}
HOUR = 3600
LOG_MAX = 64 * 1024 * 1024  # lab/proxy/proxy.yaml log.max_bytes
STEP = 5  # the lab's scrape interval


CPU: dict[str, float] = {}  # command -> CPU seconds of labctl and the tools it ran (not the services)


def labctl(state_dir: Path, *args: str) -> tuple[float, str]:
    """Wall seconds and stdout of one `labctl` run; its CPU seconds go to CPU (a shared machine's wall
    time is mostly waiting for a core: both are printed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[" ".join(args[:2])] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return took, res.stdout


def class_hour_openmetrics(path: Path, students: int, end: int) -> int:
    """One hour of the lab's counters for a class, in OpenMetrics text; returns the number of series."""
    rnd = random.Random(7)
    models = ("claude-sonnet-4-5", "claude-haiku-4-5")
    families = {
        "claude_code_token_usage_tokens": [
            {"type": t} for t in ("input", "output", "cacheRead", "cacheCreation")
        ],
        "claude_code_cost_usage_USD": [{}],
        "claude_code_active_time_seconds": [{"type": "user"}, {"type": "cli"}],
        "claude_code_lines_of_code_count": [{"type": "added"}, {"type": "removed"}],
        "claude_code_code_edit_tool_decision": [{"decision": "accept"}, {"decision": "reject"}],
        "claude_code_commit_count": [{}],
        "claude_code_session_count": [{}],
    }
    start = end - HOUR
    series = 0
    with open(path, "w") as out:
        for family, variants in families.items():
            out.write(f"# TYPE {family} counter\n")
            for student in range(students):
                sid = f"class-{student:02d}-{rnd.getrandbits(32):08x}"
                for model in models:
                    for extra in variants:
                        labels = {
                            "job": "collector",
                            "instance": "127.0.0.1:8889",
                            "service": "collector",
                            "session_id": sid,
                            "model": model,
                            **extra,
                        }
                        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
                        value, rate = 0.0, rnd.uniform(0.1, 50.0)
                        for t in range(start, end, STEP):
                            value += rnd.uniform(0, rate) if rnd.random() < 0.3 else 0.0
                            out.write(f"{family}_total{{{text}}} {value:.6g} {t}\n")
                        series += 1
        out.write("# EOF\n")
    return series


def fill_proxy_log(state_dir: Path, students: int) -> int:
    """A real 10 s emit of the class into a throwaway module-1 lab, its log repeated to one hour."""
    with tempfile.TemporaryDirectory(prefix="labctl-bench-emit-") as tmp:
        probe = Path(tmp) / "lab"
        try:
            labctl(probe, "--runtime", "native", "up", "module-1", "--free-ports")
            labctl(
                probe,
                "emit",
                "--from-lab",
                "--sessions",
                str(students),
                "--duration",
                "10",
                "--quiet",
                "--json",
            )
            time.sleep(1)
            sample = (probe / "services" / "proxy" / "data" / "inspect" / "records.jsonl").read_bytes()
        finally:
            subprocess.run(
                [sys.executable, "-m", "labctl", "--state-dir", str(probe), "down"],
                capture_output=True,
                cwd=REPO,
                check=False,
            )
    # As the proxy keeps it: records.jsonl rotates to records.jsonl.1 at log.max_bytes (64 MiB), so an hour
    # that wrote more leaves 64 MiB in .1 and the rest of the last rotation in records.jsonl.
    log = state_dir / "services" / "proxy" / "data" / "inspect" / "records.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    hour = len(sample) * (HOUR // 10)
    rotated, current = (LOG_MAX, hour % LOG_MAX) if hour > LOG_MAX else (0, hour)
    for path, size in ((log.with_name("records.jsonl.1"), rotated), (log, current)):
        with open(path, "wb") as out:
            out.writelines(sample for _ in range(size // len(sample)))
    print(f"the class's JSON Lines log: {hour / 1e6:.0f} MB an hour, kept as the proxy rotates it")
    return sum(p.stat().st_size for p in log.parent.glob("records.jsonl*"))


def stored_tokens(state_dir: Path) -> tuple[str, str]:
    """(series, sum of their last values) of the class's token counters, as stored in Prometheus."""
    base = LabState.load(state_dir).url("prometheus", "web")
    answers = []
    for expr in (
        "count(last_over_time(claude_code_token_usage_tokens_total[2h]))",
        "sum(last_over_time(claude_code_token_usage_tokens_total[2h]))",
    ):
        res = requests.get(base + "/api/v1/query", params={"query": expr}, timeout=60).json()["data"][
            "result"
        ]
        answers.append(res[0]["value"][1] if res else "0")
    return answers[0], answers[1]


def main() -> None:
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # Then no __pycache__ is written, and every labctl and proxy start compiles labctl from source.
        print("PYTHONDONTWRITEBYTECODE is set: each Python start compiles labctl (slower than a student's)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=25)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="labctl-bench-ops-") as tmp:
        state_dir = Path(tmp) / "lab"
        try:
            t0 = time.perf_counter()
            om = Path(tmp) / "class-hour.om"
            series = class_hour_openmetrics(om, args.students, int(time.time()) - 60)
            tsdb = state_dir / "services" / "prometheus" / "data" / "tsdb"
            tsdb.mkdir(parents=True)
            subprocess.run(
                [
                    str(resolve_binary("promtool")),
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    str(om),
                    str(tsdb),
                ],
                check=True,
                capture_output=True,
            )
            log_bytes = fill_proxy_log(state_dir, args.students)
            print(
                f"1 h of class data for {args.students} students in {time.perf_counter() - t0:.1f}s: "
                f"{series} series x {HOUR // STEP} samples backfilled, proxy log {log_bytes / 1e6:.0f} MB"
            )

            labctl(state_dir, "--runtime", "native", "up", "module-3", "--free-ports")
            stored = stored_tokens(state_dir)
            for service in ("proxy", "collector", "prometheus"):
                wall, out = labctl(state_dir, "reload", service, "--json")
                [result] = json.loads(out)
                figures[f"reload_{service}_s"] = result["seconds"]
                print(
                    f"reload {service:<10} took effect in {result['seconds']:.2f}s "
                    + (f"after {result['waited']:.1f}s for Prometheus' scrape " if result["waited"] else "")
                    + f"(the whole command, Python start-up and validation included: {wall:.1f}s wall, "
                    f"{CPU['reload ' + service]:.1f}s CPU)"
                )
            backup_dir = Path(tmp) / "backup"
            figures["backup_s"], _ = labctl(state_dir, "backup", "--to", str(backup_dir))
            size = sum(p.stat().st_size for p in backup_dir.rglob("*") if p.is_file())
            print(
                f"backup            {figures['backup_s']:.1f}s wall, {CPU['backup --to']:.1f}s CPU "
                f"({size / 1e6:.0f} MB)"
            )
            labctl(state_dir, "down", "--volumes")
            figures["restore_s"], out = labctl(state_dir, "restore", str(backup_dir), "--json")
            answer = json.loads(out)
            start_s, after_check = answer["start_seconds"], answer["seconds"]
            restored = stored_tokens(state_dir)
            print(
                f"restore           {figures['restore_s']:.1f}s wall, {CPU['restore ' + str(backup_dir)]:.1f}s CPU "
                f"(labctl's start-up and the manifest check {figures['restore_s'] - after_check:.1f}s, "
                f"placing the data {after_check - start_s:.1f}s, starting module-3 again {start_s:.1f}s); "
                f"token series and their sum before {stored}, after {restored}: "
                + ("the same" if stored == restored else "DIFFERENT")
            )
        finally:
            if LabState.exists(state_dir):
                subprocess.run(
                    [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "down"],
                    capture_output=True,
                    cwd=REPO,
                    check=False,
                )
            shutil.rmtree(state_dir, ignore_errors=True)
    reloads = max(v for k, v in figures.items() if k.startswith("reload_"))
    ok = (
        reloads <= GOALS["reload_s"]
        and figures["backup_s"] <= GOALS["backup_s"]
        and figures["restore_s"] <= GOALS["restore_s"]
    )
    print(
        f"goals: reload <= {GOALS['reload_s']:.0f}s, backup and restore <= {GOALS['backup_s']:.0f}s each: "
        + ("met" if ok else "NOT met")
    )


if __name__ == "__main__":
    main()
