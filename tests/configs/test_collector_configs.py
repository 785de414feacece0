"""Every Collector configuration the lab can run passes `otelcol-lab validate` — the binary the lab runs.

Combinations: base alone, base + each overlay (auth.yaml), base + each fault overlay in
collector-configs/faults/ (globbed: new faults are picked up without touching this file), and
base + auth + each fault (a fault applied while the lab's own auth is on).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.configs.confhelpers import COLLECTOR_CONFIGS, binary

BASE = COLLECTOR_CONFIGS / "base.yaml"
OVERLAYS = sorted(p for p in COLLECTOR_CONFIGS.glob("*.yaml") if p != BASE)
FAULTS = sorted((COLLECTOR_CONFIGS / "faults").glob("*.yaml"))

# ${env:NAME} without a default: the runtime always sets these (tokens, fault endpoints); validate
# needs a value too. Variables with a `:-default` are left unset on purpose, to validate the defaults.
_REQUIRED_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def _combinations() -> list[tuple[Path, ...]]:
    combos: list[tuple[Path, ...]] = [(BASE,)]
    combos += [(BASE, overlay) for overlay in OVERLAYS]
    combos += [(BASE, fault) for fault in FAULTS]
    combos += [(BASE, overlay, fault) for overlay in OVERLAYS for fault in FAULTS]
    return combos


def _env_for(configs: tuple[Path, ...]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_COLLECTOR_", "LAB_FAULT_"))}
    for config in configs:
        for name in _REQUIRED_ENV.findall(config.read_text()):
            env[name] = "validate-" + name.lower()
    return env


def validate(configs: tuple[Path, ...], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [str(binary("otelcol-lab")), "validate"]
    for config in configs:
        args += ["--config", str(config)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)


def _id(combo: tuple[Path, ...]) -> str:
    return "+".join(p.relative_to(COLLECTOR_CONFIGS).as_posix() for p in combo)


@pytest.mark.parametrize("configs", _combinations(), ids=_id)
@pytest.mark.integration
def test_config_validates(configs: tuple[Path, ...]) -> None:
    result = validate(configs, _env_for(configs))
    assert result.returncode == 0, f"validate failed for {_id(configs)}:\n{result.stdout}{result.stderr}"


@pytest.mark.integration
def test_the_no_logs_fault_overlay_validates_and_leaves_no_logs_pipeline(tmp_path: Path) -> None:
    # `break no-logs-pipeline` writes its overlay from base.yaml: with the events counted into metrics
    # (connector count/events), the metrics pipeline must lose that receiver too, or validate refuses it.
    from labctl.faults.collector_faults import write_no_logs_overlay

    files = write_no_logs_overlay(BASE, tmp_path)
    result = validate((BASE, *files), _env_for((BASE,)))
    assert result.returncode == 0, result.stdout + result.stderr
    pipelines = yaml.safe_load(files[1].read_text())["service"]["pipelines"]
    assert not [name for name in pipelines if name.startswith("logs")]
    assert pipelines["metrics"]["receivers"] == ["otlp"]


def test_overlays_exist() -> None:
    assert COLLECTOR_CONFIGS / "auth.yaml" in OVERLAYS


@pytest.mark.integration
def test_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    # Proves validate is a real check here: an unknown exporter and a dangling pipeline reference fail.
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        BASE.read_text().replace("exporters: [prometheus, debug]", "exporters: [prometheus, debug, kafka]")
    )
    result = validate((broken,), _env_for((BASE,)))
    assert result.returncode != 0
    assert "kafka" in result.stdout + result.stderr


@pytest.mark.integration
def test_auth_overlay_without_token_is_refused() -> None:
    # The token has no default: starting auth without one must fail loudly, never run open.
    env = {k: v for k, v in os.environ.items() if k != "LAB_COLLECTOR_AUTH_TOKEN"}
    result = validate((BASE, COLLECTOR_CONFIGS / "auth.yaml"), env)
    assert result.returncode != 0
    assert "bearer token" in (result.stdout + result.stderr).lower()


def test_every_listen_address_comes_from_the_environment() -> None:
    # One file for both runtimes: nothing binds a literal address; each has an env var with a default.
    text = BASE.read_text()
    for var in (
        "LAB_COLLECTOR_OTLP_GRPC_LISTEN",
        "LAB_COLLECTOR_OTLP_HTTP_LISTEN",
        "LAB_COLLECTOR_PROM_EXPORTER_LISTEN",
        "LAB_COLLECTOR_INTERNAL_HOST",
        "LAB_COLLECTOR_INTERNAL_PORT",
        "LAB_COLLECTOR_HEALTH_LISTEN",
    ):
        assert re.search(r"\$\{env:" + var + r":-[^}]+\}", text), var
    for line in text.splitlines():
        if re.match(r"\s*(endpoint|host|port):", line):
            assert "${env:" in line, f"hard-coded listen address: {line.strip()}"
