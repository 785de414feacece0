"""Warm `up` on Docker (labctl/runtimes/docker_warm.py): when the kept containers may be started
without compose, and when compose must run because something they were made from changed. The real
engine runs it in tests/docker/test_docker_lifecycle.py (same ids after `down` and `up`, a changed
setting recreated)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from labctl.runtimes import docker_warm

SERVICES = ["proxy", "collector"]
IDS = {"proxy": "p1", "collector": "c1"}


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    files = [tmp_path / "module-1.yml", tmp_path / "module-2.yml", tmp_path / "compose.env"]
    for path in files:
        path.write_text(f"# {path.name}\n")
    return files


def digest(tmp_path: Path, files: list[Path], services=SERVICES, images=None) -> str:
    return docker_warm.inputs_digest("labctl-a", tmp_path, files, services, images or {"img:1": "sha256:aa"})


def stopped(**changes: tuple[str, str, bool]) -> dict[str, tuple[str, str, bool]]:
    return {**{s: (IDS[s], "exited", False) for s in SERVICES}, **changes}


def test_the_digest_follows_every_input(tmp_path: Path, inputs: list[Path]) -> None:
    first = digest(tmp_path, inputs)
    assert digest(tmp_path, inputs) == first  # stable
    others = {
        "another service set": digest(tmp_path, inputs, services=["proxy"]),
        "another image id": digest(tmp_path, inputs, images={"img:1": "sha256:bb"}),
        "another project": docker_warm.inputs_digest(
            "labctl-b", tmp_path, inputs, SERVICES, {"img:1": "sha256:aa"}
        ),
        "one file fewer (no override file)": digest(tmp_path, inputs[:-1]),
    }
    inputs[-1].write_text("LAB_PORT_PROXY_ADMIN=5321\n")  # e.g. --port-offset or --auth
    others["another env file"] = digest(tmp_path, inputs)
    assert all(d != first for d in others.values()), [k for k, d in others.items() if d == first]
    assert len(set(others.values())) == len(others)


def test_kept_containers_start_only_when_exactly_the_recorded_ones(
    tmp_path: Path, inputs: list[Path]
) -> None:
    d = digest(tmp_path, inputs)
    assert docker_warm.kept_to_start(tmp_path, d, SERVICES, stopped()) is None  # nothing recorded yet
    docker_warm.record(tmp_path, d, IDS)
    assert stat.S_IMODE(docker_warm.record_path(tmp_path).stat().st_mode) == 0o600
    assert sorted(docker_warm.kept_to_start(tmp_path, d, SERVICES, stopped()) or []) == ["c1", "p1"]
    # Only the stopped ones are started; all running: nothing to do, and no compose either.
    assert docker_warm.kept_to_start(tmp_path, d, SERVICES, stopped(proxy=("p1", "running", False))) == ["c1"]
    running = {s: (i, "running", False) for s, i in IDS.items()}
    assert docker_warm.kept_to_start(tmp_path, d, SERVICES, running) == []

    compose_must_run = {
        "inputs changed": docker_warm.kept_to_start(tmp_path, "other", SERVICES, stopped()),
        "a container recreated": docker_warm.kept_to_start(
            tmp_path, d, SERVICES, stopped(proxy=("p2", "exited", False))
        ),
        "a container missing": docker_warm.kept_to_start(
            tmp_path, d, SERVICES, {"proxy": ("p1", "exited", False)}
        ),
        "a container more (a probe, a stand-in)": docker_warm.kept_to_start(
            tmp_path, d, SERVICES, stopped(**{"check-probe": ("x1", "running", False)})
        ),
        "another stage": docker_warm.kept_to_start(tmp_path, d, ["proxy"], stopped()),
        "paused": docker_warm.kept_to_start(tmp_path, d, SERVICES, stopped(proxy=("p1", "running", True))),
        "dead": docker_warm.kept_to_start(tmp_path, d, SERVICES, stopped(proxy=("p1", "dead", False))),
        "restarting": docker_warm.kept_to_start(
            tmp_path, d, SERVICES, stopped(proxy=("p1", "restarting", False))
        ),
    }
    assert all(v is None for v in compose_must_run.values()), {k: v for k, v in compose_must_run.items() if v}

    docker_warm.record_path(tmp_path).write_text("{not json")
    assert docker_warm.kept_to_start(tmp_path, d, SERVICES, stopped()) is None
    docker_warm.forget(tmp_path)
    assert not docker_warm.record_path(tmp_path).exists()


@pytest.mark.integration  # it starts a stand-in CLI
def test_start_all_starts_each_container_and_reports_the_first_refusal(tmp_path: Path) -> None:
    """A docker-compatible stand-in: `start <id>` is recorded, and id `bad` is refused as the engine
    would refuse it."""
    calls = tmp_path / "calls"
    cli = tmp_path / "docker"
    cli.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        'if [ "$2" = bad ]; then echo "Error response from daemon: port is already allocated" >&2; exit 1; fi\n'
    )
    cli.chmod(0o755)
    assert docker_warm.start_all([str(cli)], ["a", "b"]) is None
    assert sorted(calls.read_text().split("\n")[:-1]) == ["start a", "start b"]
    said = docker_warm.start_all([str(cli)], ["a", "bad"])
    assert said == "Error response from daemon: port is already allocated"
