"""The docker runtime's exact compose invocations, recorded by a docker-compatible CLI stand-in.

python-on-whales is pointed at a tiny recorder program that writes the arguments it receives: what is
tested here is what labctl asks docker to do, in milliseconds. The Docker lane (tests/docker/, on a real
engine started by tests/tools/docker-engine.sh) runs the same runtime for real.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.model import load_model, read_env_file
from labctl.runtimes import base
from labctl.runtimes.docker import DockerRuntime
from labctl.state import LabState, allocate_ports

RECORDER = """#!/bin/sh
printf '%s\\n' "$*" >> "$LABCTL_TEST_RECORD"
case "$*" in
  *"version --format"*) echo 27.0.0 ;;
  *"image inspect"*) echo sha256:0123456789abcdef ;;
  # LABCTL_TEST_RUNNING=<service>: the project lists one running container of that service.
  "ps -aq"*) [ -n "$LABCTL_TEST_RUNNING" ] && echo c0ffee ;;
  "inspect c0ffee") printf '[{"Id": "c0ffee", "State": {"Status": "running", "Running": true}, '\
'"Config": {"Labels": {"com.docker.compose.service": "%s"}}}]\\n' "$LABCTL_TEST_RUNNING" ;;
esac
exit 0
"""


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch) -> Path:
    script = tmp_path / "docker-recorder"
    script.write_text(RECORDER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "calls.txt"
    monkeypatch.setenv("LABCTL_TEST_RECORD", str(record))
    # The engine probe uses the `docker` found on PATH: make it the recorder for this test.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").symlink_to(script)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return record


def make_runtime(tmp_path: Path, recorder: Path) -> DockerRuntime:
    model = load_model()
    lab = LabState(
        dir=tmp_path / "state",
        runtime="docker",
        instance="class-a",
        ports=allocate_ports(model.default_ports(), free=True),
    )
    lab.save()
    return DockerRuntime(lab, model, client_call=[str(recorder.parent / "bin" / "docker")])


def calls(record: Path) -> list[str]:
    """The compose calls (image checks and the engine probe left out)."""
    return [
        line
        for line in record.read_text().splitlines()
        if line.startswith("compose ") and not line.startswith("compose version")
    ]


@pytest.mark.integration
def test_up_module_1_issues_one_compose_up_with_files_project_and_env_files(tmp_path, recorder):
    rt = make_runtime(tmp_path, recorder)
    probed: list[str] = []
    # The recorder starts no container: stand in for the services' health answers (not what is tested).
    rt.probe = lambda service, timeout=1.0: probed.append(service) or True  # type: ignore[method-assign]
    rt.up("module-1")
    assert set(probed) == {"proxy", "model-stub"}  # labctl waits on every started service's probe
    compose = load_model().root / "compose"
    ups = [c for c in calls(recorder) if " up " in f" {c} "]
    expected = (
        f"compose --file {compose}/module-1.yml --env-file {compose}/versions.env "
        f"--env-file {rt.lab.dir}/compose.env --project-name labctl-class-a --project-directory {compose} "
        "up --detach --remove-orphans --pull never"
    )
    assert ups == [expected]
    assert not any("prune" in c or c.startswith("system") for c in calls(recorder))
    env = read_env_file(rt.lab.dir / "compose.env")
    assert env["LAB_PORT_PROXY_OTLP_GRPC"] == str(rt.lab.port("proxy", "otlp_grpc"))
    assert env["LAB_PROMETHEUS_TARGETS_DIR"] == str(rt.targets_dir)
    assert len(env["LAB_GRAFANA_ADMIN_PASSWORD"]) >= 16 and env["LAB_GRAFANA_ADMIN_PASSWORD"] != "admin"
    assert stat.S_IMODE((rt.lab.dir / "compose.env").stat().st_mode) == 0o600
    targets = json.loads((rt.targets_dir / "collector.json").read_text())
    assert targets[0]["targets"] == ["collector:8889"]
    assert LabState.load(rt.lab.dir).stage == "module-1"


@pytest.mark.integration
def test_stage_files_grow_by_layer_and_down_uses_all_of_them(tmp_path, recorder):
    rt = make_runtime(tmp_path, recorder)
    rt.lab.stage = "module-3"
    assert [p.name for p in rt.files()] == ["module-1.yml", "module-2.yml", "module-3.yml"]
    rt.down(volumes=True)
    (down,) = [c for c in calls(recorder) if " down" in c]
    assert down.count("--file") == 4
    assert down.endswith("down --remove-orphans --timeout 5 --volumes")
    assert "--project-name labctl-class-a" in down
    assert not LabState.exists(rt.lab.dir)


@pytest.mark.integration
def test_down_stops_and_keeps_the_containers_unless_volumes_or_faults_ask_for_removal(tmp_path, recorder):
    rt = make_runtime(tmp_path, recorder)
    rt.lab.stage = "module-3"
    rt.down()
    composed = [c for c in calls(recorder) if "compose" in c]
    assert composed[-1].endswith("stop --timeout 5") and not any(" down" in c for c in composed)
    assert rt.env_file.exists()  # the next `up` reads the stopped lab's ports and password back
    for fresh in (True, False):
        recorder.write_text("")
        DockerRuntime(rt.lab, rt.model, client_call=rt.client_call).down(volumes=not fresh, fresh=fresh)
        (down,) = [c for c in calls(recorder) if " down" in c]
        assert ("--volumes" in down) is not fresh  # faults were active: containers go, data stays


def test_a_new_lab_takes_a_stopped_labs_ports_and_password_back_only_when_all_are_free(tmp_path, recorder):
    import socket

    from labctl.runtimes.docker import resume_stopped

    rt = make_runtime(tmp_path, recorder)
    rt.write_env_file()
    old, password = rt.lab.ports, rt.lab.settings["grafana_admin_password"]

    def fresh(instance: str = "class-a") -> LabState:
        ports = allocate_ports(rt.model.default_ports(), free=True)
        return LabState(dir=rt.lab.dir, runtime="docker", instance=instance, ports=ports)

    lab = fresh()
    resume_stopped(lab, free_ports=True)
    assert lab.ports["proxy"] == old["proxy"] and lab.ports["prometheus"] == old["prometheus"]
    assert lab.settings["grafana_admin_password"] == password
    other = fresh("class-b")  # another instance's env file is not this lab's
    resume_stopped(other, free_ports=True)
    assert other.ports["proxy"] != old["proxy"] and "grafana_admin_password" not in other.settings
    with socket.socket() as held:  # one port of the old lab is taken now: none is reused
        held.bind(("127.0.0.1", next(iter(old["collector"].values()))))
        held.listen()
        busy = fresh()
        resume_stopped(busy, free_ports=True)
    assert busy.ports["proxy"] != old["proxy"]


@pytest.mark.integration
def test_collector_overrides_become_a_compose_override_file(tmp_path, recorder):
    rt = make_runtime(tmp_path, recorder)
    rt.lab.stage = "module-2"
    rt.lab.save()
    rt.ready_timeout = 0.5  # the recorder starts no container, so the health wait must give up
    overlay = load_model().root / "collector-configs" / "auth.yaml"
    with pytest.raises(LabError, match="collector was not healthy"):
        # An env the overlay does not read: the container's environment changes, so it is recreated.
        rt.set_overrides("collector", extra_configs=[overlay], env={"LAB_TEST_OVERRIDE": "on"})
    (recreate,) = [c for c in calls(recorder) if " up " in c]
    assert f"--file {rt.override_file} " in recreate
    assert recreate.endswith("up --detach --force-recreate --no-deps collector")
    doc = rt.override_doc()["services"]["collector"]
    assert doc == {"environment": {"LAB_TEST_OVERRIDE": "on"}}  # the command stays compose's own
    assert rt.files()[-1] == rt.override_file
    with pytest.raises(LabError, match="outside the lab repository"):
        rt.container_path(tmp_path / "elsewhere.yaml")


@pytest.mark.integration
def test_collector_that_never_gets_healthy_is_reported(tmp_path, recorder):
    rt = make_runtime(tmp_path, recorder)
    rt.ready_timeout = 0.5  # nothing listens on its health port: the recorder starts no container
    rt.probe = lambda service, timeout=1.0: service != "collector"  # type: ignore[method-assign]
    with pytest.raises(LabError, match="collector was not healthy") as err:
        rt.up("module-2")
    assert "labctl logs collector" in (err.value.hint or "")
    assert LabState.load(rt.lab.dir).stage is None  # nothing recorded for a stage that did not come up


@pytest.mark.skipif(base.docker_engine()[0], reason="a Docker engine answers on this machine")
@pytest.mark.parametrize(
    "args",
    [["--runtime", "docker", "up", "module-1"], ["up", "module-1", "--runtime", "docker"]],
    ids=["global-option", "up-option"],
)
@pytest.mark.integration
def test_docker_requested_without_an_engine_is_a_clear_error(tmp_path, args):
    result = subprocess.run(
        ["python", "-m", "labctl", "--state-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2
    assert "--runtime docker was requested but" in result.stderr
    assert "--runtime native" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "lab.json").exists()


@pytest.mark.integration
def test_service_primitives_map_to_commands_on_this_projects_containers(
    tmp_path, recorder, capsys, monkeypatch
):
    rt = make_runtime(tmp_path, recorder)
    rt.lab.stage = "module-2"
    rt.stop_service("collector")  # no container: nothing to stop
    rt.kill_service("collector", 9)
    monkeypatch.setenv("LABCTL_TEST_RUNNING", "collector")
    rt = DockerRuntime(rt.lab, rt.model, client_call=rt.client_call)  # another command: it lists again
    rt.stop_service("collector")
    rt.kill_service("collector", 9)
    rt.logs("collector", lines=50)
    # Stop and signal go to the engine, on the container (compose would read every layer file first).
    lines = recorder.read_text().splitlines()
    assert [c for c in lines if c.split()[0] in ("stop", "kill")] == [
        "stop -t 5 labctl-class-a-collector-1",
        "kill --signal 9 labctl-class-a-collector-1",
    ]
    issued = [c.split(" --project-directory ")[1].split(" ", 1)[1] for c in calls(recorder)]
    assert issued == ["logs --no-color --tail 50 collector"]
    assert all("--project-name labctl-class-a" in c for c in calls(recorder))
    with pytest.raises(LabError, match="unknown service 'nope'"):
        rt.stop_service("nope")
