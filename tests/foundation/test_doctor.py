"""`labctl doctor` checks what the chosen runtime needs: --runtime picks it, --port-offset the ports."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from labctl import doctor
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


def test_doctor_says_which_front_takes_the_proxys_grpc_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("LABCTL_GRPC_FRONT_BIN", raising=False)
    monkeypatch.delenv("LABCTL_GRPC_FRONT", raising=False)
    python = doctor._grpc_front()
    assert (python.level, python.detail) == ("ok", "the Python front (grpc.aio)")
    assert "labctl install grpc-front" in python.fix
    binary = tmp_path / "labctl-grpc-front"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("LABCTL_GRPC_FRONT_BIN", str(binary))
    go = doctor._grpc_front()
    assert (go.level, go.detail, go.fix) == ("ok", f"the Go front, {binary}", "")
    monkeypatch.setenv("LABCTL_GRPC_FRONT", "python")
    assert doctor._grpc_front().detail == "the Python front (grpc.aio)"
    monkeypatch.setenv("LABCTL_GRPC_FRONT", "rust")
    bad = doctor._grpc_front()
    assert bad.level == "fail" and "LABCTL_GRPC_FRONT" in bad.detail and "go, python or auto" in bad.fix


@pytest.mark.integration
def test_doctor_rejects_an_unknown_runtime(labctl, lab_state_dir):
    result = labctl("doctor", "--runtime", "podman", state_dir=lab_state_dir, check=False)
    assert result.returncode != 0 and "unknown runtime 'podman'" in result.stderr


def test_doctor_keeps_image_references_whole_within_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    """Image references are long words a student copies: each stays whole on one line, and every line
    that does not hold a single word longer than the terminal fits 80 columns."""
    from labctl import ui
    from labctl.doctor import Finding, print_findings

    refs = [
        "labctl-test/prometheus:414b4ccce45e-474799de3b32",
        "otel/opentelemetry-collector-contrib:0.165.0",
        "grafana/grafana:12.2.0@sha256:" + "0123456789abcdef" * 4,  # longer than any column
    ]
    findings = [
        Finding("image prometheus", "ok", refs[0]),
        Finding("image collector", "warn", f"{refs[1]} is not here: `labctl up` pulls it (needs a registry)"),
        Finding("image grafana", "warn", f"{refs[2]} is not here", "`labctl images load FILE` (offline)"),
        Finding("port proxy.otlp_grpc", "ok", "free"),
    ]
    ui.console.width = 80
    try:
        print_findings(findings)
    finally:
        ui.console.width = 200
    lines = capsys.readouterr().out.splitlines()
    for ref in refs:
        assert any(ref in line for line in lines), (ref, lines)
    assert all(len(line) <= 80 for line in lines if refs[2] not in line), lines
    assert any(line.strip() == refs[2] + " is not here" or line.strip() == refs[2] for line in lines), lines
    assert any(line.strip().startswith("fix:") for line in lines)
