"""The Docker runtime on a real engine, as a new user meets it: a fresh state directory, `down` then
`down --volumes`, a missing compose plugin, a missing image, a stray LAB_PORT_* in the shell, and the
offline classroom's `labctl images save`/`load`."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.checks.marker import send_marker
from labctl.model import load_model
from labctl.runtimes.ports import port_in_use
from labctl.state import LabState, find_free_ports
from tests.conftest import labctl_env, run_labctl
from tests.docker.conftest import docker, leftovers, project

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def test_fresh_state_dir_up_records_the_stage_only_after_success(docker_state, docker_lab) -> None:
    state_dir, _ = docker_state
    assert not state_dir.exists()
    lab = docker_lab("module-2")
    assert lab.stage == "module-2"
    status = json.loads(run_labctl("status", "--json", state_dir=state_dir).stdout)
    assert {s["service"]: s["health"] for s in status["services"]} == {
        "proxy": "healthy",
        "model-stub": "healthy",
        "collector": "healthy",
    }
    # The lane's stand-in images (LAB_*_IMAGE at `up`) are what runs, and are recorded for later commands.
    env = dict(
        line.split("=", 1)
        for line in (state_dir / "compose.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert env["LAB_COLLECTOR_IMAGE"] == os.environ["LAB_COLLECTOR_IMAGE"]
    image = docker("inspect", "--format", "{{.Config.Image}}", f"{project(lab)}-collector-1").stdout.strip()
    assert image == os.environ["LAB_COLLECTOR_IMAGE"]
    assert env["LAB_PROXY_IMAGE"].startswith("labctl-proxy:")
    # Output is progress lines, not a build log.
    out = run_labctl("up", "module-2", state_dir=state_dir).stdout
    assert "Step " not in out and "--->" not in out


def test_down_keeps_stopped_containers_up_starts_them_down_volumes_leaves_nothing(
    docker_state, docker_lab
) -> None:
    """`down` stops the lab (nothing runs, its ports are free, `status` says no lab) and keeps its
    containers and networks; the next `up` starts the same containers itself on the same ports
    (compose is not run: nothing changed), a changed setting goes through compose, which recreates
    what it changed, and a stage change removes what the new stage does not run. With a fault active
    `down` removes the containers; `down --volumes`, even after the state dir was deleted, then leaves
    nothing."""
    state_dir, instance = docker_state
    lab = docker_lab("module-3")
    name = project(lab)

    def containers(*flags: str) -> dict[str, str]:
        label = f"label=com.docker.compose.project={name}"
        out = docker("ps", *flags, "--filter", label, "--format", "{{.Names}} {{.ID}}").stdout
        return dict(line.split() for line in out.splitlines())

    def up(*args: str) -> str:
        out = run_labctl("--instance", instance, "up", *args, state_dir=state_dir).stdout
        return " ".join(out.split())  # rich wraps at 80 columns

    made = containers("-a")
    assert len(made) == len(load_model().stage_services("module-3", "docker")), made
    out = run_labctl("down", state_dir=state_dir)
    assert "containers kept" in out.stdout and "--volumes" in out.stdout, out.stdout
    assert containers() == {} and containers("-a") == made  # stopped, not removed
    left = leftovers(name)
    assert left["networks"] and left["volumes"], left
    for service in load_model().stage_services("module-3", "docker"):
        for port in lab.ports[service].values():
            assert not port_in_use(port), f"{service} still holds {port} after down"
    assert json.loads(run_labctl("status", "--json", state_dir=state_dir).stdout)["running"] is False

    # The student comes back: the kept containers start again as they are (same ids, same ports:
    # --free-ports takes the stopped lab's ports back while they are free), without compose.
    out = up("module-3", "--runtime", "docker", "--free-ports")
    assert "starting the kept containers" in out and "docker compose" not in out, out
    assert containers() == made
    warm = LabState.load(state_dir)
    assert all(warm.ports[s] == lab.ports[s] for s in load_model().stage_services("module-3", "docker"))
    status = json.loads(run_labctl("status", "--json", state_dir=state_dir).stdout)
    assert {s["health"] for s in status["services"]} == {"healthy"}, status

    # A changed setting goes through compose: auth changes the proxy's environment, so the proxy is
    # made anew and every other container is kept.
    out = up("module-3", "--auth")
    assert "docker compose" in out, out
    authed = containers()
    assert authed[f"{name}-proxy-1"] != made[f"{name}-proxy-1"]
    assert {k: v for k, v in authed.items() if "-proxy-" not in k} == {
        k: v for k, v in made.items() if "-proxy-" not in k
    }

    # One stage lower: module 3's containers go as orphans, the Collector, which module 3 extends, is
    # made anew for module 2, and layer 1's are kept.
    again = docker_lab("module-2")
    now = containers("-a")
    assert sorted(now) == sorted(f"{name}-{s}-1" for s in ("proxy", "model-stub", "collector")), now
    for service in ("proxy", "model-stub"):
        assert now[f"{name}-{service}-1"] == authed[f"{name}-{service}-1"], service
    assert now[f"{name}-collector-1"] != made[f"{name}-collector-1"]
    assert requests.get(again.url("proxy", "admin") + "/readyz", timeout=5).ok

    # With a fault active, `down` removes the containers (a kept one would carry the fault's change).
    run_labctl("break", "collector-crash", state_dir=state_dir)
    out = run_labctl("down", state_dir=state_dir)
    assert "dropped active faults" in out.stdout and "data kept" in out.stdout, out.stdout
    assert containers("-a") == {} and leftovers(name)["volumes"]
    # The student deletes the state dir after `down`: `down --volumes` still finds what it kept.
    shutil.rmtree(state_dir)
    out = run_labctl("--instance", instance, "down", "--volumes", state_dir=state_dir)
    assert "data deleted" in out.stdout
    assert leftovers(name) == {"containers": [], "networks": [], "volumes": []}
    # Only the empty lock file of `labctl`'s lifecycle commands stays (no secrets, no data).
    assert sorted(p.name for p in state_dir.iterdir()) == [".lock"], list(state_dir.iterdir())


def test_missing_compose_plugin_is_one_clear_error_and_records_nothing(tmp_path: Path) -> None:
    empty_config = tmp_path / "docker-config"
    empty_config.mkdir()
    state_dir = tmp_path / "lab"
    res = run_labctl(
        "--runtime",
        "docker",
        "up",
        "module-1",
        "--free-ports",
        state_dir=state_dir,
        check=False,
        env=labctl_env(DOCKER_CONFIG=str(empty_config)),
    )
    assert res.returncode != 0
    assert "needs Docker Compose v2" in res.stderr and "docker compose version" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not (state_dir / "lab.json").exists()
    doctor = run_labctl(
        "doctor",
        "--runtime",
        "docker",
        "--json",
        state_dir=state_dir,
        check=False,
        env=labctl_env(DOCKER_CONFIG=str(empty_config)),
    )
    findings = {f["name"]: f for f in json.loads(doctor.stdout)}
    assert findings["docker compose"]["level"] == "fail" and doctor.returncode == 1
    assert not any(name.startswith("binary ") for name in findings)  # native checks only for native


def test_missing_image_stops_before_recording_the_stage(docker_state, docker_lab) -> None:
    state_dir, instance = docker_state
    docker_lab("module-1")
    absent = "labctl-test/absent:0"
    res = run_labctl(
        "--instance",
        instance,
        "up",
        "module-2",
        state_dir=state_dir,
        check=False,
        env=labctl_env(LAB_COLLECTOR_IMAGE=absent),
    )
    assert res.returncode != 0
    assert f"collector's image {absent} is not on this machine and cannot be pulled" in res.stderr, res.stderr
    assert "labctl images load" in res.stderr and "Traceback" not in res.stderr
    assert LabState.load(state_dir).stage == "module-1"
    # Grafana's image is optional: module 4 runs without it (test_parity.py's module-4 test).


def test_stray_lab_port_in_the_shell_does_not_override_the_lab(docker_state) -> None:
    state_dir, instance = docker_state
    stray = find_free_ports(1)[0]
    env = labctl_env(LAB_PORT_PROXY_ADMIN=str(stray), LAB_AUTH_TOKEN="stray-token")
    run_labctl(
        "--runtime",
        "docker",
        "--instance",
        instance,
        "up",
        "module-1",
        "--free-ports",
        state_dir=state_dir,
        env=env,
    )
    lab = LabState.load(state_dir)
    assert lab.port("proxy", "admin") != stray
    assert requests.get(lab.url("proxy", "admin") + "/readyz", timeout=5).ok
    published = docker("port", f"{project(lab)}-proxy-1", "4320").stdout.strip()
    assert published == f"127.0.0.1:{lab.port('proxy', 'admin')}"
    # The stray token did not switch auth on either: a client without a token is accepted.
    assert send_marker(lab.url("proxy", "otlp_grpc"), "stray-env", timeout_s=5).sent_ok


@pytest.mark.slow
def test_images_save_remove_load_then_up_needs_no_registry(docker_state, tmp_path: Path) -> None:
    """The offline classroom recipe: `labctl images save`, the images gone, `labctl images load`, and
    `up module-3` starts with nothing pulled or built (this engine reaches no registry: nothing could be).
    Grafana has no stand-in image here, so the archive is `--partial` and says what it left out."""
    state_dir, instance = docker_state

    def labctl(*args: str, check: bool = True) -> Any:
        return run_labctl(
            "--runtime",
            "docker",
            "--instance",
            instance,
            *args,
            state_dir=state_dir,
            timeout=600,
            check=check,
        )

    def images() -> dict[str, dict[str, Any]]:
        return {i["role"]: i for i in json.loads(labctl("images", "--json").stdout)}

    labctl("images", "build")
    before = images()
    assert all(before[r]["present"] for r in ("proxy", "collector", "prometheus", "python")), before
    # Every image here, the base image last: the others are built on it.
    roles = sorted((r for r, i in before.items() if i["present"]), key=lambda r: r == "python")
    refs = [before[r]["ref"] for r in roles]
    archive = tmp_path / "lab-images.tar"
    saved = labctl("images", "save", str(archive), "--partial")
    assert f"not saved (not on this machine): {before['grafana']['ref']}" in saved.stdout + saved.stderr
    with tarfile.open(archive) as tar:  # `docker save` names every tag it holds in manifest.json
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert set(refs) <= {tag for entry in manifest for tag in entry.get("RepoTags") or []}, manifest

    try:
        # --force: a stopped container of another lane on this cached engine would keep a tag in use.
        docker("image", "rm", "--force", *refs)
        assert not any(i["present"] for i in images().values())
    finally:
        loaded = labctl("images", "load", str(archive), check=False)  # also after a failure: the lane's cache
    assert loaded.returncode == 0, loaded.stderr
    assert all(images()[r]["present"] for r in roles)

    up = labctl("up", "module-3", "--free-ports")
    said = (up.stdout + up.stderr).lower()
    assert "pulling" not in said and "building" not in said, said
    status = json.loads(run_labctl("status", "--json", state_dir=state_dir).stdout)
    expected = load_model().stage_services("module-3", "docker")
    assert {s["service"]: s["health"] for s in status["services"]} == dict.fromkeys(expected, "healthy")
