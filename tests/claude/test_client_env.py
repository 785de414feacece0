"""`labctl env` / `labctl claude`: one block (telemetry + model), the stub's or the real account's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.emulator.labenv import STUB_API_KEY, client_env, lab_env, render
from labctl.errors import LabError
from labctl.modelstub import client
from labctl.state import LabState

PORTS = {"proxy": {"otlp_grpc": 24317, "otlp_http": 24318, "admin": 24320}, "model-stub": {"api": 24380}}


def make_lab(tmp: Path, stage: str = "module-1", ports: dict[str, dict[str, int]] | None = None) -> LabState:
    lab = LabState(dir=tmp, stage=stage, ports=ports or PORTS)
    lab.save()
    return lab


def test_the_stub_block_extends_the_telemetry_block(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    env = client_env(lab, "http/json")
    assert env == {
        **lab_env(lab, "http/json"),
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:24380",
        "ANTHROPIC_API_KEY": STUB_API_KEY,
    }


def test_real_account_block_unsets_the_stub(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    env = client_env(lab, real_account=True)
    assert env["ANTHROPIC_BASE_URL"] is None and "ANTHROPIC_API_KEY" not in env
    assert "unset ANTHROPIC_BASE_URL" in render(env, "sh").splitlines()
    assert "set -e ANTHROPIC_BASE_URL" in render(env, "fish")
    assert "Remove-Item Env:ANTHROPIC_BASE_URL" in render(env, "powershell")
    # A lab from before the stub (no model-stub port): the real account, without asking.
    older = make_lab(tmp_path / "old", ports={"proxy": PORTS["proxy"]})
    assert client_env(older)["ANTHROPIC_BASE_URL"] is None


def test_claude_runs_isolated_and_offline(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    user_env = {
        "PATH": "/usr/bin",
        "HOME": "/home/student",
        "ANTHROPIC_API_KEY": "sk-ant-real-secret",
        "ANTHROPIC_BASE_URL": "https://elsewhere.example",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://x",
        "OTEL_LOG_USER_PROMPTS": "1",
    }
    run = client.prepare(
        lab,
        Path("/opt/claude"),
        "hello-write",
        ["--debug-file", "/tmp/d.log"],
        protocol="http/protobuf",
        base_env=user_env,
    )
    env = run.env
    assert env["ANTHROPIC_API_KEY"] == STUB_API_KEY and env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:24380"
    assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" not in env  # only the lab's endpoint
    assert env["OTEL_LOG_USER_PROMPTS"] == "1"  # the student's own telemetry switches are kept
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:24318"
    assert env["HOME"] == str(tmp_path / "claude" / "home") and env["CLAUDE_CONFIG_DIR"].startswith(
        env["HOME"]
    )
    assert env["ANTHROPIC_CUSTOM_HEADERS"] == "x-lab-scenario: hello-write"
    assert (
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and env["CLAUDE_CODE_OTEL_SHUTDOWN_TIMEOUT_MS"]
    )
    assert run.cmd == [
        "/opt/claude",
        "-p",
        "Create hello.py that prints a greeting.",
        "--allowedTools",
        "Write",
        "--debug-file",
        "/tmp/d.log",
    ]
    assert run.workdir == tmp_path / "claude" / "work" / "hello-write" and run.workdir.is_dir()
    config = json.loads((Path(env["CLAUDE_CONFIG_DIR"]) / ".claude.json").read_text())
    assert config["hasCompletedOnboarding"] is True
    assert config["customApiKeyResponses"]["approved"] == [STUB_API_KEY[-20:]]
    assert config["projects"][str(run.workdir)]["hasTrustDialogAccepted"] is True


def test_claude_needs_the_stub_and_a_known_scenario(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no scenario 'nope'") as err:
        client.prepare(make_lab(tmp_path), Path("/opt/claude"), "nope", [], base_env={})
    assert "hello-write" in (err.value.hint or "")
    older = make_lab(tmp_path / "old", ports={"proxy": PORTS["proxy"]})
    with pytest.raises(LabError, match="model stub is not running"):
        client.prepare(older, Path("/opt/claude"), "hello-write", [], base_env={})


@pytest.mark.parametrize(
    ("stage", "protocol", "account"),
    [("module-1", "grpc", []), ("module-4", "http/protobuf", ["--real-account"])],  # each variant's widest
)
def test_env_block_fits_80_columns(tmp_path: Path, stage: str, protocol: str, account: list[str]) -> None:
    # Its comments are read in a terminal: none wider than a default 80-column one. Only an
    # unsplittable `export NAME=value` line (a URL) may be longer.
    from typer.testing import CliRunner

    from labctl.cli import application

    make_lab(tmp_path, stage=stage)
    args = ["--state-dir", str(tmp_path), "env", "--protocol", protocol, *account]
    result = CliRunner().invoke(application(), args)
    assert result.exit_code == 0, result.output
    comments = [line for line in result.output.splitlines() if line.startswith("#")]
    assert len(comments) >= 2, result.output
    assert all(len(line) <= 80 for line in comments), [line for line in comments if len(line) > 80]
    assert ("your own Claude account" if account else "the lab's stub") in result.output
