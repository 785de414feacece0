"""Benchmark: memory and CPU of one student's lab (native module-4), and what 20 or 50 students need.

Starts a native module-4 lab on free ports, samples every lab process (all services, with children)
while it idles and while a student works (`labctl emit --from-lab --sessions 5 --duration 30`, then
`labctl check`), and prints peak RSS and average CPU. The sizing multiplies one student's peak by the
class and adds room for the system. Grafana is not counted: it cannot run on the machines this was
written on (on Docker, add what `docker stats` shows for its container).

    python tests/benchmarks/class_sizing.py [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from timed_cli import REPO

from labctl.model import load_model
from labctl.runtimes import process
from labctl.state import LabState

SYSTEM_ROOM_GB = 2.0  # the operating system, the students' shells and browsers on a shared server


def lab_processes(lab: LabState) -> list[psutil.Process]:
    found = []
    for service in load_model(REPO).services:
        rec = process.read_record(lab.pid_path(service))
        proc = rec.process() if rec else None
        if proc is not None:
            found += [proc, *proc.children(recursive=True)]
    return found


class Sampler:
    """Peak RSS (MB) and CPU seconds of the lab's processes between start() and stop()."""

    def __init__(self, lab: LabState) -> None:
        self.lab, self.peak_mb, self.done = lab, 0.0, threading.Event()

    def _cpu(self) -> float:
        total = 0.0
        for p in lab_processes(self.lab):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def _loop(self) -> None:
        while not self.done.is_set():
            rss = 0
            for p in lab_processes(self.lab):
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, rss / 1e6)
            self.done.wait(0.5)

    def run(self, seconds: float | None = None, during: list[str] | None = None) -> tuple[float, float]:
        """(peak MB, average cores) over `seconds` of idling or the commands `during`."""
        thread = threading.Thread(target=self._loop, daemon=True)
        start, cpu0, own0 = time.monotonic(), self._cpu(), _commands_cpu()
        thread.start()
        if during:
            for args in during:
                labctl(self.lab.dir, *args.split())
        else:
            time.sleep(seconds or 0)
        self.done.set()
        thread.join()
        # The student's own labctl commands (emit, check) count too: they run on the same machine.
        used = self._cpu() - cpu0 + _commands_cpu() - own0
        return self.peak_mb, used / (time.monotonic() - start)


def _commands_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def labctl(state_dir: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), *args],
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=300,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labctl-sizing-") as tmp:
        state_dir = Path(tmp) / "lab"
        try:
            labctl(state_dir, "--runtime", "native", "up", "module-4", "--free-ports")
            lab = LabState.load(state_dir)
            idle_mb, idle_cores = Sampler(lab).run(seconds=args.idle_seconds)
            work = ["emit --from-lab --sessions 5 --duration 30", "check"]
            busy_mb, busy_cores = Sampler(lab).run(during=work)
        finally:
            labctl(state_dir, "down")
    load = os.getloadavg()[0]
    print(f"one student's lab (native module-4, no Grafana), machine load {load:.1f}")
    print(f"  idle:    {idle_mb:6.0f} MB RSS, {idle_cores:.3f} cores")
    print(f"  working: {busy_mb:6.0f} MB RSS, {busy_cores:.3f} cores (emit 5 sessions for 30 s, check)")
    for students in (20, 50):
        ram = students * busy_mb / 1000 + SYSTEM_ROOM_GB
        cores = students * idle_cores + max(students // 4, 1) * busy_cores
        print(
            f"  {students} students on one server: {ram:.0f} GB RAM, {cores:.1f} cores "
            f"(everyone idle, a quarter working at once; + {SYSTEM_ROOM_GB:.0f} GB for the system)"
        )


if __name__ == "__main__":
    main()
