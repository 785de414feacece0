"""Runtime parity: the same exercise on the native and the Docker runtime gives the same diagnosis.

One module-3 lab per runtime serves every fault (heal restores the previous state). For each fault of
FAULTS: send a session, `labctl break`, `labctl check --json`, `labctl heal`, check green again — and
`check` must name the same layer, cause and playbook on both runtimes. Causes are compared with their
addresses and numbers left out (127.0.0.1:<port> natively, collector:4317 on Docker), and without the
native runtime's mentions of its scrape relay (the route that hop takes natively, named in parentheses).

Adding a fault is adding one row to FAULTS.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from labctl.checks.marker import send_marker
from labctl.model import load_model
from labctl.state import LabState
from tests.conftest import kill_leftovers, run_labctl
from tests.docker.conftest import docker as dockercli
from tests.docker.conftest import leftovers, remove_project

pytestmark = [pytest.mark.integration, pytest.mark.docker]

# (fault, its arguments): every fault and mode the Docker runtime supports.
FAULTS: list[tuple[str, list[str]]] = [
    ("network", []),
    ("network", ["--mode", "refuse"]),
    ("network", ["--hop", "collector-prometheus"]),
    ("network", ["--hop", "collector-prometheus", "--mode", "refuse"]),
    ("endpoint", ["unreachable-host"]),
    ("endpoint", ["wrong-port"]),
    ("endpoint", ["protocol-mismatch"]),
    ("endpoint", ["invalid-url"]),
    ("auth", ["wrong"]),
    ("auth", ["missing"]),
    ("collector-crash", []),
    ("storage-down", []),
    ("scrape-path", []),
    ("contract", []),
    ("cardinality", []),
]

_NATIVE_ROUTE = re.compile(r" \((?:scrape relay for [^)]*|is the scrape relay running\? [^)]*)\)")
_ADDR = re.compile(r"\b(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|[a-z][\w.-]*):\d+\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


def normalized(cause: str | None) -> str:
    """A cause without its addresses and numbers (ports, timings), which differ between runtimes."""
    return _NUMBER.sub("N", _ADDR.sub("ADDR", _NATIVE_ROUTE.sub("", cause or "")))


class RuntimeLab:
    def __init__(self, state_dir: Path, *global_args: str) -> None:
        self.dir = state_dir
        self.args = global_args

    def cli(self, *args: str, check: bool = True) -> Any:
        return run_labctl(*self.args, *args, state_dir=self.dir, check=check, timeout=180)

    def check(self) -> tuple[int, dict[str, Any]]:
        res = self.cli("check", "--json", check=False)
        assert res.stdout.strip(), res.stderr
        return res.returncode, json.loads(res.stdout)

    def green(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        code, report = self.check()
        while code != 0 and time.monotonic() < deadline:
            time.sleep(1)
            code, report = self.check()
        assert code == 0, json.dumps(report, indent=1)

    def diagnosis(self, fault: str, args: list[str]) -> dict[str, Any]:
        """break → check → heal → green; returns what check said about the first failing layer."""
        lab = LabState.load(self.dir)
        assert send_marker(
            lab.url("proxy", "otlp_grpc"), f"parity-{secrets.token_hex(3)}", timeout_s=3
        ).sent_ok
        self.cli("break", fault, *args)
        try:
            code, report = self.check()
        finally:
            self.cli("heal", fault)
        layer = report["first_failing_layer"]
        failing = [r for r in report["results"] if r["verdict"] == "FAIL" and r["layer"] == layer]
        self.green()
        return {
            "exit": code,
            "layer": layer,
            "findings": sorted({(r["playbook"], normalized(r["cause"])) for r in failing}),
        }


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RuntimeLab, RuntimeLab]]:
    """One module-3 lab per runtime, started at the same time (they are independent)."""
    native_dir = tmp_path_factory.mktemp("parity-native") / "lab"
    docker_dir = tmp_path_factory.mktemp("parity-docker") / "lab"
    instance = f"p{uuid.uuid4().hex[:8]}"
    native_lab, docker_lab = RuntimeLab(native_dir), RuntimeLab(docker_dir, "--instance", instance)
    try:
        with ThreadPoolExecutor(2) as pool:
            ups = [
                pool.submit(native_lab.cli, "--runtime", "native", "up", "module-3", "--free-ports"),
                pool.submit(docker_lab.cli, "--runtime", "docker", "up", "module-3", "--free-ports"),
            ]
            for up in ups:
                up.result()
            for green in [pool.submit(lab.green) for lab in (native_lab, docker_lab)]:
                green.result()
        yield native_lab, docker_lab
    finally:
        docker_lab.cli("heal", "--all", check=False)
        docker_lab.cli("down", "--volumes", check=False)
        remove_project(f"labctl-{instance}")
        native_lab.cli("down", check=False)
        kill_leftovers(native_dir)


@pytest.fixture(scope="module")
def native(labs: tuple[RuntimeLab, RuntimeLab]) -> RuntimeLab:
    return labs[0]


@pytest.fixture(scope="module")
def docker(labs: tuple[RuntimeLab, RuntimeLab]) -> RuntimeLab:
    return labs[1]


CASES = [pytest.param(f, a, id=" ".join([f, *a])) for f, a in FAULTS]


@pytest.mark.parametrize(("fault", "args"), CASES)
def test_check_names_the_same_layer_cause_and_playbook(
    native: RuntimeLab, docker: RuntimeLab, fault: str, args: list[str]
) -> None:
    # The two labs are independent: both runtimes do the exercise at the same time (half the wall time).
    with ThreadPoolExecutor(2) as pool:
        native_run, docker_run = (
            pool.submit(native.diagnosis, fault, args),
            pool.submit(docker.diagnosis, fault, args),
        )
        on_native, on_docker = native_run.result(), docker_run.result()
    assert on_native["exit"] != 0, on_native
    assert on_docker == on_native


def test_up_module_1_to_3_and_back_down_runs_the_same_services(tmp_path: Path) -> None:
    """Each stage, up and back down, shows the same services running (the native-only relays aside)."""
    runs: dict[str, list[list[str]]] = {}
    instance = f"s{uuid.uuid4().hex[:8]}"
    for runtime in ("native", "docker"):
        lab = RuntimeLab(tmp_path / runtime, "--instance", instance)
        seen = []
        try:
            for n, stage in enumerate(("module-1", "module-2", "module-3", "module-1")):
                lab.cli("--runtime", runtime, "up", stage, *(("--free-ports",) if n == 0 else ()))
                status = json.loads(lab.cli("status", "--json").stdout)
                seen.append(
                    sorted(
                        s["service"]
                        for s in status["services"]
                        if s["state"] == "running" and not s["service"].endswith("-relay")
                    )
                )
            runs[runtime] = seen
        finally:
            lab.cli("down", "--volumes", check=False)
            if runtime == "docker":
                remove_project(f"labctl-{instance}")
    assert (
        runs["docker"]
        == runs["native"]
        == [
            # lab.yaml's services per stage (the native relays aside): both runtimes run exactly these.
            sorted(s for s in load_model().stage_services(stage, "docker") if not s.endswith("-relay"))
            for stage in ("module-1", "module-2", "module-3", "module-1")
        ]
    )


def test_module_4_without_a_grafana_image_notifies_end_to_end(docker: RuntimeLab) -> None:
    """Last in this file, on its Docker lab: `up module-4` where Grafana's image is absent (this engine has
    no stand-in for it) runs Alertmanager and the notify-receiver (from the proxy image) healthy, says in
    one line how to get the image, and `check` proves the test notification end to end; `down --volumes`
    then leaves nothing of the project (module 4 adds two volumes and two networks)."""
    lab = LabState.load(docker.dir)
    image = lab.settings["images"]["grafana"]
    if dockercli("image", "inspect", image, check=False).returncode == 0:
        pytest.skip(f"this engine has {image}: the test is about its absence")
    said = " ".join(docker.cli("up", "module-4").stdout.split())
    assert f"Grafana's image is not here (`docker pull {image}` or `labctl images load FILE`)" in said, said
    services = {s["service"]: s for s in json.loads(docker.cli("status", "--json").stdout)["services"]}
    assert services["grafana"]["state"] == "not available", services["grafana"]
    for name in ("alertmanager", "notify-receiver"):
        assert (services[name]["state"], services[name]["health"]) == ("running", "healthy"), services[name]
    receiver = f"labctl-{lab.instance}-notify-receiver-1".lower()
    ran = dockercli("inspect", "--format", "{{.Config.Image}}", receiver).stdout.strip()
    assert ran == lab.settings["proxy_image"]

    deadline = time.monotonic() + 60  # Prometheus' first evaluation of the check's rule
    code, report = docker.check()
    while code != 0 and time.monotonic() < deadline:
        code, report = docker.check()
    assert code == 0, json.dumps(report, indent=1)
    row = next(r for r in report["results"] if r["name"] == "test notification")
    assert (
        row["verdict"] == "ok"
        and f"for marker {report['marker']} reached the notify-receiver" in (row["evidence"][0])
    ), row

    docker.cli("down", "--volumes")
    assert leftovers(f"labctl-{lab.instance}".lower()) == {"containers": [], "networks": [], "volumes": []}
