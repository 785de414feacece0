"""Bad input and broken preconditions end in one clear message with the fix — and start nothing."""

from __future__ import annotations

import json
import os
import random
import socket

import pytest

from labctl.model import load_model
from labctl.runtimes.ports import port_in_use


@pytest.mark.integration
def test_unknown_module_lists_valid_ones_and_touches_nothing(labctl, lab_state_dir):
    result = labctl("--runtime", "native", "up", "module-9", state_dir=lab_state_dir, check=False)
    assert result.returncode == 2
    assert "unknown module 'module-9'" in result.stderr
    assert "module-1, module-2, module-3, module-4" in result.stderr
    assert "Traceback" not in result.stderr
    assert not lab_state_dir.exists()


@pytest.mark.integration
def test_missing_collector_binary_names_the_install_command(labctl, lab_state_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABCTL_")}
    env.update(LABCTL_CACHE_DIR=str(tmp_path / "empty-cache"), PATH="/usr/bin:/bin", COLUMNS="200")
    result = labctl(
        "--runtime", "native", "up", "module-2", "--free-ports", state_dir=lab_state_dir, check=False, env=env
    )
    assert result.returncode == 2, result.stderr
    assert "otelcol-lab was not found" in result.stderr
    assert "labctl install collector" in result.stderr
    # Binaries are resolved before anything starts: no process was launched.
    assert not list(lab_state_dir.glob("services/*/*.pid"))


def _occupied_port_and_offset() -> tuple[socket.socket, int, int]:
    """Listen on a port P and return an offset that makes the Collector's OTLP gRPC port land on P,
    with every other lab port free."""
    defaults = load_model().default_ports()
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 50000)
        offset = port - defaults["collector"]["otlp_grpc"]
        others = [p + offset for ports in defaults.values() for p in ports.values() if p + offset != port]
        if port_in_use(port) or any(port_in_use(p) for p in others):
            continue
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock, port, offset
    pytest.fail("no free port range found for the port-in-use test")


@pytest.mark.integration
def test_port_in_use_is_reported_with_number_and_owner_before_anything_starts(labctl, lab_state_dir):
    sock, port, offset = _occupied_port_and_offset()
    with sock:
        result = labctl(
            "--runtime",
            "native",
            "up",
            "module-2",
            "--port-offset",
            str(offset),
            state_dir=lab_state_dir,
            check=False,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} (collector.otlp_grpc) is in use by pid {os.getpid()}" in result.stderr
    assert "--port-offset" in result.stderr and "--free-ports" in result.stderr
    assert not list(lab_state_dir.glob("services/*/*.pid"))


@pytest.mark.integration
def test_commands_without_a_lab_say_how_to_start_one(labctl, lab_state_dir):
    status = labctl("status", "--json", state_dir=lab_state_dir)
    assert '"running": false' in status.stdout
    logs = labctl("logs", "collector", state_dir=lab_state_dir, check=False)
    assert logs.returncode == 2 and "labctl up module-1" in logs.stderr
    down = labctl("down", state_dir=lab_state_dir)
    assert "nothing to stop" in down.stdout


@pytest.mark.integration
def test_doctor_reports_each_check_with_a_fix(labctl, lab_state_dir):
    result = labctl("doctor", "--json", state_dir=lab_state_dir, check=False)
    findings = {f["name"]: f for f in json.loads(result.stdout)}
    assert {"docker engine", "disk", "memory", "binary otelcol-lab", "binary prometheus"} <= set(findings)
    for finding in findings.values():
        assert finding["level"] in ("ok", "warn", "fail")
        if finding["level"] != "ok":
            assert finding["fix"], finding
    assert result.returncode == (1 if any(f["level"] == "fail" for f in findings.values()) else 0)
