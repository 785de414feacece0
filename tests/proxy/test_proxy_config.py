"""Proxy config: ${VAR:-default} expansion, the lab's proxy.yaml, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from proxy_harness import CONTRACT, REPO

from labctl.errors import LabError
from labctl.proxy import config

LAB_YAML = REPO / "lab" / "proxy" / "proxy.yaml"


def test_lab_config_defaults_are_module_1_sink_on_localhost():
    cfg = config.load(LAB_YAML, env={})
    assert (str(cfg.otlp_grpc), str(cfg.otlp_http), str(cfg.admin)) == (
        "127.0.0.1:4317",
        "127.0.0.1:4318",
        "127.0.0.1:4320",
    )
    assert not cfg.upstream.enabled and cfg.mode == "observe"
    assert cfg.contract_path is not None and cfg.contract_path.resolve() == CONTRACT.resolve()
    assert cfg.spool_overflow == "reject" and cfg.max_request_bytes == 64 * 1024 * 1024


def test_lab_env_vars_drive_the_config(tmp_path):
    env = {
        "LAB_PROXY_OTLP_GRPC_LISTEN": "127.0.0.1:24317",
        "LAB_PROXY_OTLP_HTTP_LISTEN": "0.0.0.0:24318",
        "LAB_PROXY_ADMIN_LISTEN": "127.0.0.1:24320",
        "LAB_PROXY_DATA_DIR": str(tmp_path),
        "LAB_PROXY_CONTRACT": str(CONTRACT),
        "LAB_PROXY_UPSTREAM": "http://127.0.0.1:14317",
        "LAB_PROXY_UPSTREAM_PROTOCOL": "http/protobuf",
        "LAB_PROXY_UPSTREAM_HEADERS": "Authorization=Bearer%20abc,x-tenant=lab",
    }
    cfg = config.load(LAB_YAML, env=env)
    assert cfg.otlp_grpc.port == 24317 and cfg.otlp_http.host == "0.0.0.0" and cfg.data_dir == tmp_path
    assert cfg.upstream.endpoint == "http://127.0.0.1:14317" and cfg.upstream.protocol == "http/protobuf"
    assert cfg.upstream.headers == {"authorization": "Bearer abc", "x-tenant": "lab"}


def test_expansion_rules():
    assert config.expand("${A:-x}", {}, "t") == "x"
    assert config.expand("${A:-x}", {"A": ""}, "t") == "x"
    assert config.expand("${A:-x}/${B}", {"A": "1", "B": "2"}, "t") == "1/2"
    assert config.expand("$${A}", {"A": "1"}, "t") == "${A}"
    with pytest.raises(LabError) as err:
        config.expand("${MISSING}", {}, "f.yaml")
    assert "MISSING is not set" in err.value.message and "${MISSING:-default}" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"listen": {"admin": "nope"}}, "listen.admin: 'nope' is not a listen address"),
        ({"limits": {"max_request_bytes": "lots"}}, "is not a size"),
        ({"upstream": {"timeout": "-3s"}}, "is not a duration"),
        ({"upstream": {"protocol": "http/json"}}, "is not one of grpc, http/protobuf"),
        ({"upstream": {"endpoint": "ftp://x"}}, "is not an http(s) URL"),
        ({"upstream": {"headers": "novalue"}}, "is not key=value"),
        ({"spool": {"overflow": "ignore"}}, "spool.overflow"),
        ({"contract": {"mode": "enforce"}}, "no contract.path"),
        ({"contract": {"path": "missing.yaml"}}, "does not exist"),
        ({"upstrem": {}}, "unknown key(s) upstrem"),
        ({"spool": {"max_byte": 1}}, "spool: unknown key(s) max_byte"),
        ({"listen": {"otlp_grpc": "off", "otlp_http": "off"}}, "both OTLP receivers are off"),
    ],
)
def test_bad_values_are_clear_errors(raw, needle):
    with pytest.raises(LabError) as err:
        config.from_dict(raw, Path("."), env={})
    assert needle in err.value.message and err.value.hint


def test_secret_header_values_never_appear_in_errors():
    with pytest.raises(LabError) as err:
        config.from_dict(
            {"upstream": {"headers": "authorization=Bearer%20s3cret,broken-s3cret"}}, Path("."), env={}
        )
    assert "s3cret" not in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("listen:\n  admin: [unclosed\n")
    with pytest.raises(LabError) as err:
        config.load(bad, env={})
    assert "line" in err.value.message and str(bad) in err.value.message


def test_cli_check_validates_the_lab_config():
    from typer.testing import CliRunner

    from labctl.cli import application

    app = application()

    result = CliRunner().invoke(app, ["proxy", "serve", "--config", str(LAB_YAML), "--check"], env={})
    assert result.exit_code == 0, result.output
    assert "upstream none: the proxy is the sink" in result.output


# Each of these passed `--check` before it validated the inspection sections and the contract, and
# then failed when the proxy started.
_FAILED_ONLY_AT_START = [
    ("inspect: {console: loud}\n", "inspect.console is 'loud'"),
    ("inspect: {payloads: 0}\n", "inspect.payloads must be a positive integer"),
    ("inspect: {colour: blue}\n", "inspect: unknown key(s) colour"),
    ("sessions: {max: many}\n", "sessions.max must be a positive integer"),
    ("log: {writer: thread}\n", "log.writer is 'thread'"),
    ("log: {max_bytes: lots}\n", "log.max_bytes"),
    ("alerts: {cost: 5}\n", "'alerts' must be a list of rules"),
    ("redact: [authorization]\n", "redact"),
    ("contract: {path: broken.yaml}\n", "broken.yaml"),
]


@pytest.mark.parametrize(("section", "needle"), _FAILED_ONLY_AT_START)
def test_cli_check_is_a_full_dry_run(tmp_path, section, needle):
    from typer.testing import CliRunner

    from labctl.cli import application

    app = application()

    (tmp_path / "broken.yaml").write_text(
        "metrics:\n  claude_code.token.usage: {instrument: gauge, unit: 5}\n  - not a mapping\n"
    )
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n{section}")
    result = CliRunner().invoke(app, ["proxy", "serve", "--config", str(cfg), "--check"], env={})
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, LabError), (
        result.exception
    )  # shown at the CLI boundary, with its hint
    assert needle in result.exception.message, result.exception.message
    assert not (tmp_path / "data").exists()  # a dry run: nothing created, nothing started


@pytest.mark.integration
def test_cli_reports_a_broken_config_without_a_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "p.yaml"
    bad.write_text("spool: {overflow: sometimes}\n")
    result = subprocess.run(
        [sys.executable, "-m", "labctl", "proxy", "serve", "--config", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert "spool.overflow: 'sometimes' is not one of reject, drop_oldest" in result.stderr
    assert "Traceback" not in result.stderr


def test_local_settings_file_overrides_the_environment_at_load(tmp_path, monkeypatch):
    """LAB_PROXY_LOCAL_ENV names the JSON file labctl writes a fault's settings into: read over the
    environment at every load, so a restart of the same container applies it; absent means none."""
    local = tmp_path / "local.json"
    monkeypatch.setenv("LAB_PROXY_LOCAL_ENV", str(local))
    monkeypatch.setenv("LAB_PROXY_UPSTREAM", "http://127.0.0.1:14317")
    monkeypatch.setenv("LAB_PROXY_DATA_DIR", str(tmp_path / "data"))
    assert config.load(LAB_YAML).upstream.endpoint == "http://127.0.0.1:14317"  # no file yet
    local.write_text('{"LAB_PROXY_UPSTREAM": "http://127.0.0.1:9"}\n')
    assert config.load(LAB_YAML).upstream.endpoint == "http://127.0.0.1:9"
    local.write_text('{"LAB_PROXY_UPSTREAM": "grpc://127.0.0.1:9"}\n')
    with pytest.raises(LabError, match=r"grpc://127\.0\.0\.1:9"):
        config.load(LAB_YAML)  # the invalid-url fault: the proxy refuses to start
    local.write_text("[1]")
    with pytest.raises(LabError, match="must hold a JSON object"):
        config.load(LAB_YAML)
