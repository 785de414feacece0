"""Start and stop fault relays (labctl/faults/relay.py) as detached processes owned by one fault."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from labctl.errors import LabError
from labctl.faults.base import FaultContext, wait_until
from labctl.faults.relay import MODES
from labctl.runtimes import process
from labctl.state import find_free_ports


def start_relay(
    ctx: FaultContext, fault: str, name: str, target: str, mode: str, latency_ms: int = 0, wait: bool = True
) -> dict[str, Any]:
    """A relay on a free loopback port forwarding to `target` (host:port); returns its record.

    With wait=False the caller overlaps the relay's start-up with other work and calls wait_relay().
    """
    if mode not in MODES:
        raise LabError(f"unknown relay mode {mode!r}", f"use one of {', '.join(MODES)}")
    port = find_free_ports(1)[0]
    folder = ctx.fault_dir(fault)
    status = folder / f"{name}.status.json"
    status.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "labctl.faults.relay",
        "--listen",
        f"127.0.0.1:{port}",
        "--target",
        target,
        "--mode",
        mode,
        "--latency-ms",
        str(latency_ms),
        "--status",
        str(status),
    ]
    env = dict(os.environ)
    # The relay must import this very labctl even when started from another working directory.
    env["PYTHONPATH"] = str(ctx.model.root) + os.pathsep + env.get("PYTHONPATH", "")
    pid_path = folder / f"{name}.pid"
    process.spawn(cmd, env, folder / f"{name}.log", folder, pid_path, process.fingerprint(cmd, {}))
    relay = {
        "name": name,
        "port": port,
        "addr": f"127.0.0.1:{port}",
        "target": target,
        "mode": mode,
        "latency_ms": latency_ms,
        "pid_file": str(pid_path),
        "status": str(status),
        "log": str(folder / f"{name}.log"),
    }
    if wait:
        wait_relay(relay)
    return relay


def wait_relay(relay: dict[str, Any], timeout: float = 5.0) -> None:
    status = Path(relay["status"])
    if not wait_until("relay", lambda: status.is_file() and relay_alive(relay), timeout=timeout):
        stop_relay(relay)
        raise LabError(f"the fault relay {relay['name']} did not start", f"see {relay['log']}")


def relay_status(relay: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(Path(relay["status"]).read_text())
    except (OSError, ValueError):
        return {}


def stop_relay(relay: dict[str, Any]) -> None:
    rec = process.read_record(Path(relay["pid_file"]))
    if rec is not None:
        process.terminate([rec], timeout=2)
    Path(relay["pid_file"]).unlink(missing_ok=True)


def relay_alive(relay: dict[str, Any]) -> bool:
    rec = process.read_record(Path(relay["pid_file"]))
    return rec is not None and rec.alive()
