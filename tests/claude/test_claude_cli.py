"""`labctl claude` as a student meets it: the scenario list, and clear errors before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.modelstub.scenario import load_dir
from labctl.state import LabState
from tests.conftest import labctl_env, run_labctl

pytestmark = pytest.mark.integration  # runs the CLI as a process

REPO = Path(__file__).resolve().parents[2]


def test_list_names_every_scenario() -> None:
    out = run_labctl("claude", "--list").stdout
    for name, scenario in load_dir(REPO / "lab" / "scenarios").items():
        assert name in out and scenario.description.split()[0] in out


def test_errors_say_what_to_do(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    no_lab = run_labctl("claude", "--scenario", "hello-write", state_dir=state, check=False)
    assert no_lab.returncode != 0 and "no lab is running" in no_lab.stderr and "labctl up" in no_lab.stderr

    LabState(
        dir=state,
        stage="module-1",
        ports={"proxy": {"otlp_grpc": 1, "otlp_http": 2, "admin": 3}, "model-stub": {"api": 4}},
    ).save()
    empty_cache = labctl_env(LABCTL_CACHE_DIR=str(tmp_path / "cache"))
    missing = run_labctl("claude", "--scenario", "hello-write", state_dir=state, env=empty_cache, check=False)
    assert missing.returncode != 0
    assert "is not installed" in missing.stderr and "labctl install claude-code" in missing.stderr

    unknown = run_labctl("claude", "--scenario", "nope", state_dir=state, env=empty_cache, check=False)
    assert (
        unknown.returncode != 0 and "no scenario 'nope'" in unknown.stderr and "hello-write" in unknown.stderr
    )
    assert not (tmp_path / "cache").exists()  # nothing was installed or run
