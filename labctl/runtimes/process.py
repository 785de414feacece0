"""Detached local processes: spawn (own session, so they outlive labctl), find again by pid file, stop.

A pid file records the process's start time too, so a recycled pid is never mistaken for our service.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from labctl.poll import poll


@dataclass
class ProcRecord:
    pid: int
    create_time: float
    fingerprint: str  # hash of command + env: a change means the service must be restarted
    cmd: list[str]

    def process(self) -> psutil.Process | None:
        """The live process, or None when it exited (zombies count as exited)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0:
                return None  # pid reused by something else
            if proc.status() == psutil.STATUS_ZOMBIE:
                _reap(proc)
                return None
            return proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        return self.process() is not None


def fingerprint(cmd: list[str], env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps([cmd, sorted(env.items())]).encode()).hexdigest()[:16]


def read_record(pid_path: Path) -> ProcRecord | None:
    try:
        return ProcRecord(**json.loads(pid_path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def spawn(
    cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path, pid_path: Path, fingerprint: str
) -> ProcRecord:
    """Start `cmd` detached; `fingerprint` identifies its configuration (see `fingerprint()`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        log.write(f"\n=== labctl {stamp}: starting {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group/session: survives labctl and Ctrl-C in its shell
            close_fds=True,
        )
    rec = ProcRecord(
        pid=proc.pid, create_time=psutil.Process(proc.pid).create_time(), fingerprint=fingerprint, cmd=cmd
    )
    pid_path.write_text(json.dumps(asdict(rec)))
    return rec


def strays(workdirs: set[Path]) -> list[ProcRecord]:
    """Processes started in one of these working directories that no pid file names: a `labctl up`
    killed between starting a service and writing its pid file leaves one. Only detached session
    leaders without a terminal count (as `spawn` starts them), never a shell that happens to sit there."""
    wanted = {str(p.resolve()) for p in workdirs}
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "create_time", "cmdline", "terminal"]):
        info = proc.info
        if info["pid"] in mine or info["cwd"] not in wanted or info["terminal"]:
            continue
        try:
            if os.getsid(info["pid"]) != info["pid"]:
                continue
        except OSError:
            continue
        found.append(ProcRecord(info["pid"], info["create_time"], "", list(info["cmdline"] or [])))
    return found


def _reap(proc: psutil.Process) -> None:
    # Only our own children can be reaped; for others (after labctl exited) init does it.
    try:
        os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal_group(proc: psutil.Process, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the whole session group: children of the service go too
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def send_signal(rec: ProcRecord, sig: int) -> bool:
    proc = rec.process()
    if proc is None:
        return False
    _signal_group(proc, sig)
    return True


def terminate(records: list[ProcRecord], timeout: float = 8.0) -> list[ProcRecord]:
    """SIGTERM all at once, wait up to `timeout`, then SIGKILL what is left. Returns the ones killed."""
    procs = [(rec, p) for rec in records if (p := rec.process()) is not None]
    for _, proc in procs:
        _signal_group(proc, signal.SIGTERM)
        _signal_group(proc, signal.SIGCONT)  # a frozen (SIGSTOP) service cannot handle SIGTERM
    deadline = time.monotonic() + timeout
    pending = [rec for rec, _ in procs]
    pending = _wait_gone(pending, deadline)
    for rec in pending:
        if (left := rec.process()) is not None:
            _signal_group(left, signal.SIGKILL)
    _wait_gone(pending, time.monotonic() + 5)
    return pending


def _wait_gone(records: list[ProcRecord], deadline: float) -> list[ProcRecord]:
    """Poll until every process is gone (zombies count as gone: PID 1 may be slow to reap orphans)."""
    pending = list(records)

    def gone() -> bool:
        pending[:] = [rec for rec in pending if rec.alive()]
        return not pending

    poll(gone, max(0.0, deadline - time.monotonic()), 0.05)
    return pending


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
