"""`labctl doctor` checks what the chosen runtime needs: --runtime picks it, --port-offset the ports."""

from __future__ import annotations

import json
import socket

import pytest

from labctl.model import load_model
from labctl.state import find_free_ports


@pytest.mark.integration
def test_doctor_native_checks_binaries_and_the_ports_of_the_offset(labctl, lab_state_dir):
    ports = load_model().default_ports()
    default = ports["proxy"]["admin"]
    highest = max(p for named in ports.values() for p in named.values())
    # A free port above the default whose offset keeps every lab port below 65536.
    busy = next(p for p in find_free_ports(20) if default < p < 65535 - (highest - default))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        result = labctl(
            "doctor",
            "--runtime",
            "native",
            "--port-offset",
            str(busy - default),
            "--json",
            state_dir=lab_state_dir,
            check=False,
        )
    assert result.stdout.strip(), result.stderr
    findings = {f["name"]: f for f in json.loads(result.stdout)}
    assert "binary otelcol-lab" in findings and "docker compose" not in findings
    assert findings[f"port {busy}"]["level"] == "fail", findings
    assert "proxy.admin" in findings[f"port {busy}"]["detail"]
    assert result.returncode == 1


@pytest.mark.integration
def test_doctor_rejects_an_unknown_runtime(labctl, lab_state_dir):
    result = labctl("doctor", "--runtime", "podman", state_dir=lab_state_dir, check=False)
    assert result.returncode != 0 and "unknown runtime 'podman'" in result.stderr
