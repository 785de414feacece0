"""Hidden faults on the Docker runtime: the Collector's container shows no fault in its command or its
mounts (a hidden overlay goes into the Collector's local slot, which it reloads in the same container),
check fails at the fault's layer, and a right diagnosis is graded 4/4 at `reveal`, which empties the
slot again.
Nothing in the container's configuration (`docker inspect`: command, mounts, environment, labels)
names the fault or its mechanism.

One module-2 lab serves every round: repository overlays (memory-pressure and the delta, expiry and
per-request-label traps), a generated one (no-logs-pipeline, written outside the repository) and auth
(an overlay that reads a token, which the hidden copy holds itself instead of an environment
variable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.faults import blind
from labctl.runtimes import collector_slot
from labctl.runtimes.docker import DockerRuntime
from labctl.state import LabState
from tests.conftest import run_labctl
from tests.docker.conftest import docker, instance_name, project, remove_project


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    state_dir, instance = tmp_path_factory.mktemp("blind-docker") / "lab", instance_name()
    try:
        run_labctl(
            "--runtime",
            "docker",
            "--instance",
            instance,
            "up",
            "module-2",
            "--free-ports",
            state_dir=state_dir,
        )
        yield state_dir, instance
    finally:
        run_labctl("--instance", instance, "down", "--volumes", state_dir=state_dir, check=False)
        remove_project(f"labctl-{instance}")


def _collector(state_dir: Path) -> dict:  # type: ignore[type-arg]
    name = f"{project(LabState.load(state_dir))}-collector-1"
    return json.loads(docker("inspect", name).stdout)[0]  # type: ignore[no-any-return]


# Words that would give each fault away in the container's configuration, besides its name.
GIVEAWAYS = {
    "memory-pressure": ("memory",),
    "no-logs-pipeline": ("logs",),
    "delta-temporality": ("delta",),
    "series-expiry": ("expir",),
    "per-request-label": ("span", "request_id"),
    "auth": ("auth", "token", "bearer"),  # the fault's token goes into the hidden copy, not the env
}


@pytest.mark.parametrize("name", list(GIVEAWAYS))
def test_a_hidden_collector_fault_leaves_no_name_in_the_container(lab: tuple[Path, str], name: str) -> None:
    state_dir, instance = lab

    def cli(*args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return run_labctl("--instance", instance, *args, state_dir=state_dir, check=check, timeout=240)

    before = _collector(state_dir)
    healthy = before["Config"]
    try:
        cli("break", name, "--hidden")
        container = _collector(state_dir)
        config = container["Config"]
        # What the fault changed: the command and mounts whole, the environment and labels that differ
        # from the healthy container's (LAB_COLLECTOR_LOGS_EXPORTERS, say, is always there).
        shown = json.dumps(
            {
                "args": container["Args"],
                "mounts": container["Mounts"],
                "env": sorted(set(config["Env"]) - set(healthy["Env"])),
                "labels": {k: v for k, v in config["Labels"].items() if healthy["Labels"].get(k) != v},
            }
        ).lower()
        for word in (name, "faults/", *GIVEAWAYS[name]):
            assert word.lower() not in shown, f"{word!r} in the collector container: {shown}"
        # Applied by a reload: the same container, with the command and mounts of the healthy lab.
        assert (container["Id"], container["Args"]) == (before["Id"], before["Args"])
        mounts = [sorted(json.dumps(m, sort_keys=True) for m in c["Mounts"]) for c in (container, before)]
        assert mounts[0] == mounts[1]  # in any order: the engine lists them from a map

        res = cli("check", "--json", check=False)
        truth = blind.answer(name, {})
        assert json.loads(res.stdout)["first_failing_layer"] == truth.layer, res.stdout
        cli(
            "diagnose",
            *("--layer", str(truth.layer), "--hop", truth.hop, "--cause", truth.cause),
            *("--evidence", "check", "--fix", "undo it"),
        )
        graded = json.loads(cli("reveal", "--json").stdout)["graded"][0]
        assert graded["correct"] is True and graded["score"] == 4
        after = _collector(state_dir)
        assert (after["Id"], after["Args"]) == (before["Id"], DockerRuntime.collector_args())
        slot = collector_slot.slot_paths(LabState.load(state_dir).dir)
        assert [p.read_text() for p in slot] == ["{}\n", "{}\n"]
    except BaseException:
        cli("heal", "--all", check=False)
        raise
