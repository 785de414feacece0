"""Model → compose mapping: the compose files run exactly the services, ports, env and files of the model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.model import LabModel, Placement, load_model, read_env_file
from labctl.runtimes import collector_slot
from labctl.runtimes.docker import DockerRuntime, layer_files, port_var

_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def model() -> LabModel:
    return load_model()


def compose_doc(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def all_files(model: LabModel) -> list[Path]:
    return layer_files(model, max(s.layer for s in model.stages.values()))


def defined_services(model: LabModel) -> dict[str, tuple[int, dict[str, Any]]]:
    """service -> (layer of the file that defines it, its definition). Later files may only extend."""
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    for layer, path in enumerate(all_files(model), 1):
        for name, svc in (compose_doc(path).get("services") or {}).items():
            if "image" in svc or "build" in svc:
                assert name not in out, f"{name} defined twice"
                out[name] = (layer, svc)
    return out


def merged_env(model: LabModel, service: str, layer: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for path in layer_files(model, layer):
        svc = (compose_doc(path).get("services") or {}).get(service) or {}
        env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
    return env


def test_one_file_per_layer_and_every_model_service_in_its_layer(model):
    assert [p.name for p in all_files(model)] == [
        "module-1.yml",
        "module-2.yml",
        "module-3.yml",
        "module-4.yml",
    ]
    defined = defined_services(model)
    # The hop relays run natively only (lab.yaml `runtimes`): docker cuts those hops with the network.
    assert set(defined) == {s for s, svc in model.services.items() if "docker" in svc.runtimes}
    assert {s for s, svc in model.services.items() if "docker" not in svc.runtimes} == {
        "otlp-relay",
        "scrape-relay",
        "query-relay",
        "alert-relay",
        "notify-relay",
        "events-relay",
        "traces-relay",
    }
    for name, (layer, _) in defined.items():
        assert layer == model.service(name).layer, f"{name} belongs in module-{model.service(name).layer}.yml"


def test_every_image_is_pinned_through_versions_env(model):
    for name, (_, svc) in defined_services(model).items():
        if "build" in svc:
            image_var = svc["build"]["args"]["LAB_PYTHON_IMAGE"]
            dockerfile = (
                model.root / "compose" / svc["build"]["context"] / svc["build"]["dockerfile"]
            ).resolve()
            assert dockerfile.is_file()
            assert "FROM ${LAB_PYTHON_IMAGE}" in dockerfile.read_text()
        elif svc["image"].startswith("${LAB_PROXY_IMAGE"):
            # labctl's own services run the proxy image labctl builds on the pinned Python image.
            image_var = defined_services(model)["proxy"][1]["build"]["args"]["LAB_PYTHON_IMAGE"]
        else:
            image_var = svc["image"]
        m = _VAR.fullmatch(image_var)
        assert m, f"{name}: image must come from versions.env, got {image_var!r}"
        image = model.versions[m.group(1)]
        tag = image.rpartition(":")[2]
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned"


def test_ports_are_loopback_only_and_match_the_model(model):
    from labctl.model import SHARED_ON_BIND

    for name, (_, svc) in defined_services(model).items():
        # `up --bind` moves only the shared services' ports off loopback (LAB_BIND, default 127.0.0.1).
        host = "${LAB_BIND:-127.0.0.1}" if name in SHARED_ON_BIND else "127.0.0.1"
        expected = {
            f"{host}:${{{port_var(name, p.name)}:-{p.host}}}:{p.container}"
            for p in model.service(name).ports.values()
        }
        assert set(svc.get("ports") or []) == expected, name


def test_environment_matches_the_model_resolved_for_docker(model):
    where = Placement(runtime="docker", ports={}, repo=model.root)
    for stage in model.stages.values():
        for name in model.stage_services(stage.name, "docker"):
            expected = model.service_env(name, where, stage.services)
            assert merged_env(model, name, stage.layer) == expected, f"{name} in {stage.name}"


def test_commands_match_the_native_arguments(model):
    where = Placement(runtime="docker", ports={}, repo=model.root)
    defined = defined_services(model)
    # Both runtimes add the Collector's local slot after lab.yaml's arguments (runtimes/collector_slot.py).
    slot = [f"{collector_slot.CONTAINER_DIR}/{name}" for name in collector_slot.SLOT_FILES]
    native = model.native_args("collector", where) + collector_slot.config_args(slot)
    assert defined["collector"][1]["command"] == native == DockerRuntime.collector_args()
    assert defined["proxy"][1]["command"] == [
        "python",
        "-m",
        "labctl.proxy",
        *model.native_args("proxy", where),
    ]


def test_every_bind_mounted_path_exists_and_is_a_lab_folder(model):
    for path in all_files(model):
        for name, svc in (compose_doc(path).get("services") or {}).items():
            for vol in svc.get("volumes") or []:
                if isinstance(vol, dict):
                    assert vol["type"] in ("tmpfs", "volume"), f"{name}: {vol}"
                    continue
                source = vol.split(":")[0]
                if source.startswith(".."):
                    assert (path.parent / source).resolve().exists(), f"{path.name}:{name}: {source} missing"
                    top = Path(source).parts[1]
                    assert top in {"lab", "collector-configs", "dashboards"}, f"{name} mounts {source}"
                elif not source.startswith("${"):
                    assert source in (compose_doc(path).get("volumes") or {}), (
                        f"{name}: undeclared volume {source}"
                    )


def test_services_with_a_shell_have_healthchecks_on_their_health_endpoint(model):
    for name, (_, svc) in defined_services(model).items():
        health = model.service(name).health
        port = model.service(name).ports[health.port].container
        if name == "collector":
            # No shell or HTTP client in that image: labctl polls its health port from the host.
            assert "healthcheck" not in svc
            continue
        assert f"127.0.0.1:{port}{health.path}" in " ".join(svc["healthcheck"]["test"])


# `docker compose config` itself (the real Compose CLI) runs in test_compose_config.py.


def test_every_compose_variable_is_set_by_versions_env_or_the_instance_env_file(model, tmp_path):
    from labctl.runtimes.docker import DockerRuntime
    from labctl.state import LabState, allocate_ports

    lab = LabState(dir=tmp_path, runtime="docker", ports=allocate_ports(model.default_ports(), offset=3))
    rt = DockerRuntime(lab, model)
    rt.write_env_file()
    provided = {**model.versions, **read_env_file(rt.env_file)}
    used = {m.group(1) for path in all_files(model) for m in _VAR.finditer(path.read_text())}
    # LAB_LABCTL_VERSION only tags the locally built proxy image (it has a default); all others are set.
    missing = used - set(provided) - {"LAB_LABCTL_VERSION"}
    assert not missing, f"compose uses variables nobody sets: {sorted(missing)}"
    for service, ports in lab.ports.items():
        if "docker" not in model.service(service).runtimes:
            assert not any(k.startswith(port_var(service, "")) for k in provided), "native-only: no variable"
            continue
        for name, port in ports.items():
            assert provided[port_var(service, name)] == str(port)


def test_each_hop_has_its_own_network_and_services_share_at_most_one(model):
    """A partition disconnects one service from one network: that cuts exactly one hop only when no two
    services can also reach each other over a second network (labctl/faults/docker_net.py)."""
    networks = {
        name: set(svc.get("networks") or ["default"]) for name, (_, svc) in defined_services(model).items()
    }
    for path in all_files(model):  # a later file may add networks (Prometheus joins `alerting` in module-4)
        for name, svc in (compose_doc(path).get("services") or {}).items():
            networks[name] |= set(svc.get("networks") or [])
    names = sorted(networks)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert len(networks[a] & networks[b]) <= 1, f"{a} and {b} share {networks[a] & networks[b]}"
    cut = [h for h in model.hops if h.network]  # lab.yaml: the hops Docker cuts by their own network
    assert {h.name for h in cut} >= set(model.cuttable_hops())
    for hop in cut:
        net, target, source = hop.network, hop.target_service, hop.source
        assert net in networks[target] and net in networks[source], (hop.name, net)
