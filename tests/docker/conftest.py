"""The Docker lane: tests on a real Docker engine, run by `tests/tools/docker-engine.sh run` (a private
dockerd, stand-in images under test names in LAB_*_IMAGE, the compose plugin in a private DOCKER_CONFIG).
Outside that lane they are skipped with the reason; tests/run-all.sh runs the lane after the main suite.

    def test_something(docker_lab):
        lab = docker_lab("module-3")          # `labctl --runtime docker up module-3 --free-ports`
        docker("ps", "--filter", f"label=com.docker.compose.project={project(lab)}")
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labctl.state import LabState
from tests.conftest import run_labctl

LANE = os.environ.get("LABCTL_DOCKER_LANE") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    skip = pytest.mark.skip(
        reason="needs the real engine: bash tests/tools/docker-engine.sh run -- pytest tests/docker"
    )
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)
            item.add_marker(pytest.mark.integration)
            if not LANE:
                item.add_marker(skip)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)
    if check and out.returncode != 0:
        pytest.fail(f"`docker {' '.join(args)}` exited {out.returncode}: {out.stderr}", pytrace=False)
    return out


def project(lab: LabState) -> str:
    return f"labctl-{lab.instance}".lower()


def leftovers(name: str) -> dict[str, list[str]]:
    """Every container, network and volume of a compose project still in the engine."""
    label = f"label=com.docker.compose.project={name}"
    return {
        "containers": docker("ps", "-aq", "--filter", label).stdout.split(),
        "networks": docker("network", "ls", "-q", "--filter", label).stdout.split(),
        "volumes": docker("volume", "ls", "-q", "--filter", label).stdout.split(),
    }


def remove_project(name: str) -> None:
    left = leftovers(name)
    if left["containers"]:
        docker("rm", "-f", *left["containers"], check=False)
    for kind in ("networks", "volumes"):
        if left[kind]:
            docker(kind[:-1], "rm", *left[kind], check=False)


def instance_name() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def docker_state(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(state dir, instance) for a docker lab; `labctl down --volumes` and a sweep of the project after."""
    state_dir, instance = tmp_path / "lab", instance_name()
    try:
        yield state_dir, instance
    finally:
        run_labctl("--instance", instance, "down", "--volumes", state_dir=state_dir, check=False)
        remove_project(f"labctl-{instance}")


@pytest.fixture
def docker_lab(docker_state: tuple[Path, str]) -> Callable[..., LabState]:
    """Factory: docker_lab("module-3") brings the lab to that stage (additive, like a student's `up`)."""
    state_dir, instance = docker_state

    def up(stage: str, *extra: str) -> LabState:
        first = () if LabState.exists(state_dir) else ("--free-ports",)
        run_labctl(
            "--runtime", "docker", "--instance", instance, "up", stage, *first, *extra, state_dir=state_dir
        )
        return LabState.load(state_dir)

    return up


def labctl_json(*args: str, state_dir: Path) -> object:
    return json.loads(run_labctl(*args, "--json", state_dir=state_dir).stdout)
