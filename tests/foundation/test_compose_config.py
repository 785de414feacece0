"""`docker compose config` — the real Compose CLI — on every stage, invoked exactly as the docker runtime does.

The Compose CLI plugin is built from its Go module by tests/tools/build-compose-plugin.sh (tests/run-all.sh
runs it; the binary is cached in the labctl cache under a versioned name). It is never installed into
~/.docker: each test run gets a temporary docker config dir whose cli-plugins/ holds it. `config` needs no
engine: it loads, merges, interpolates and validates the files against the Compose specification and prints
the normalised model, which the tests then check against lab.yaml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from python_on_whales.exceptions import DockerException

from labctl.install.paths import cache_dir
from labctl.model import LabModel, Stage, load_model
from labctl.runtimes import collector_slot, proxy_local
from labctl.runtimes.docker import DockerRuntime, compose_dir, layer_files
from labctl.state import LabState, allocate_ports

# Every test here runs the real `docker compose config` (a process): the integration lane.
pytestmark = pytest.mark.integration

BUILD_SCRIPT = "tests/tools/build-compose-plugin.sh"
BIND_FOLDERS = {"lab", "collector-configs", "dashboards"}  # the repo folders containers may see
PORT_OFFSET = 7  # ports unlike the defaults, so the test proves the per-instance env file is what counts

pytestmark = pytest.mark.integration  # runs the real `docker compose` CLI


@pytest.fixture(scope="module")
def model() -> LabModel:
    return load_model()


def _plugin(model: LabModel) -> Path | None:
    """The pinned plugin: LABCTL_COMPOSE_PLUGIN, else what the build script left in the labctl cache."""
    configured = os.environ.get("LABCTL_COMPOSE_PLUGIN")
    if configured:
        return Path(configured)
    built = cache_dir() / "test-tools" / f"docker-compose-{model.versions['LAB_COMPOSE_CLI_VERSION']}"
    return built if built.is_file() else None


@pytest.fixture(scope="module")
def docker_config(model: LabModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A docker config dir for this run only, with the Compose plugin in its cli-plugins/."""
    plugin = _plugin(model)
    missing = []
    if shutil.which("docker") is None:
        missing.append("the docker CLI is not installed")
    if plugin is None or not plugin.is_file():
        missing.append(f"no Compose plugin built (run `bash {BUILD_SCRIPT}`)")
    if missing:
        why = "; ".join(missing)
        if os.environ.get("CI"):
            # CI runs tests/run-all.sh, which builds the plugin: its absence there is a broken setup.
            pytest.fail(f"docker compose config cannot run: {why}", pytrace=False)
        pytest.skip(why)
    assert plugin is not None
    config = tmp_path_factory.mktemp("docker-config")
    (config / "cli-plugins").mkdir()
    (config / "cli-plugins" / "docker-compose").symlink_to(plugin.resolve())
    version = subprocess.run(
        ["docker", "--config", str(config), "compose", "version"], capture_output=True, text=True, check=False
    )
    assert model.versions["LAB_COMPOSE_CLI_VERSION"] in version.stdout, version.stdout + version.stderr
    return config


def docker_runtime(model: LabModel, state: Path, docker_config: Path, stage: Stage) -> DockerRuntime:
    """A docker runtime for a lab instance at `stage`, its per-instance files written as `labctl up` does."""
    lab = LabState(
        dir=state,
        runtime="docker",
        instance="Compose-Check",  # mixed case: the runtime must lower-case it for compose
        ports=allocate_ports(model.default_ports(), offset=PORT_OFFSET),
    )
    lab.save()
    lab.stage = stage.name
    rt = DockerRuntime(lab, model, client_call=["docker", "--config", str(docker_config)])
    rt.prepare_files()
    return rt


def compose_config(rt: DockerRuntime) -> dict[str, Any]:
    """`docker compose <the runtime's files, env files, project> config --format json`."""
    try:
        return rt.client().compose.config(return_json=True)  # type: ignore[return-value]
    except DockerException as exc:
        pytest.fail(
            f"docker compose config rejected the files of {rt.lab.stage}:\n{exc.stderr}", pytrace=False
        )


def healthcheck_test(svc: dict[str, Any]) -> list[str]:
    return list((svc.get("healthcheck") or {}).get("test") or [])


@pytest.mark.parametrize("stage_name", ["module-1", "module-2", "module-3", "module-4"])
def test_compose_config_accepts_each_stage_as_the_runtime_passes_it(
    model, docker_config, tmp_path, stage_name
):
    stage = model.stage(stage_name)
    rt = docker_runtime(model, tmp_path / "state", docker_config, stage)
    assert [p.name for p in rt.files()] == [f"module-{n}.yml" for n in range(1, stage.layer + 1)]
    cfg = compose_config(rt)

    assert cfg["name"] == "labctl-compose-check"
    services: dict[str, Any] = cfg["services"]
    assert set(services) == set(model.stage_services(stage_name, "docker"))
    assert "${" not in json.dumps(cfg), "a variable was left uninterpolated"
    pinned = {v for k, v in model.versions.items() if k.endswith("_IMAGE")}

    for name, svc in services.items():
        model_svc = model.service(name)
        # Images: exactly the pins from versions.env; the proxy is built on the pinned Python image.
        if "build" in svc:
            assert svc["build"]["args"]["LAB_PYTHON_IMAGE"] == model.versions["LAB_PYTHON_IMAGE"]
            assert (Path(svc["build"]["context"]) / svc["build"]["dockerfile"]).is_file()
            assert svc["build"]["network"] == "none"  # offline, from the wheelhouse
        if name in ("proxy", "model-stub", "notify-receiver"):  # labctl's own: the proxy image it built
            assert svc["image"].startswith("labctl-proxy:"), svc["image"]
        else:
            assert svc["image"] in pinned, f"{name}: {svc['image']} is not a pin from versions.env"

        # Ports: every one published on loopback only, on this instance's port, to the model's container port.
        published = {
            (p["host_ip"], int(p["published"]), p["target"], p["protocol"]) for p in svc.get("ports", [])
        }
        expected = {
            ("127.0.0.1", rt.lab.port(name, port.name), port.container, "tcp")
            for port in model_svc.ports.values()
        }
        assert published == expected, name

        # Mounts: binds resolve to existing lab folders (read-only) or to the instance's own files
        # (Prometheus' targets, Alertmanager's receiver-url, the Collector's and the proxy's local files).
        for vol in svc.get("volumes", []):
            if vol["type"] == "volume":
                assert vol["source"] in cfg["volumes"], f"{name}: undeclared volume {vol['source']}"
                continue
            assert vol["type"] == "bind", f"{name}: {vol}"
            source = Path(vol["source"])
            assert source.exists(), f"{name}: bind source {source} does not exist"
            assert vol.get("read_only") is True, f"{name}: {source} is mounted writable"
            if source in (
                rt.targets_dir,
                rt.alertmanager_run_dir,
                collector_slot.slot_dir(rt.lab.dir),
                proxy_local.path(rt.lab.dir).parent,
            ):
                continue
            rel = source.relative_to(model.root)
            assert rel.parts[0] in BIND_FOLDERS, f"{name} mounts {rel}"

        # Health: a healthcheck on the model's health endpoint, except the collector, which labctl polls
        # from the host because its image has no shell or HTTP client.
        health_port = model_svc.ports[model_svc.health.port].container
        if name == "collector":
            assert not healthcheck_test(svc)
        else:
            assert f"127.0.0.1:{health_port}{model_svc.health.path}" in " ".join(healthcheck_test(svc)), name

    # Start order follows the model's hops: a service starts after what it talks to. Only started, never
    # healthy: every client retries, labctl waits for each health endpoint itself, and compose waiting
    # for an image's first healthcheck (one interval after the start) would serialize the start.
    for hop in model.hops:
        if hop.source in services and hop.target_service in services:
            dep = (services[hop.source].get("depends_on") or {}).get(hop.target_service)
            assert dep, f"{hop.source} does not depend on {hop.target_service} (hop {hop.name})"
            assert dep["condition"] == "service_started", hop.name

    env = {k: v for svc in services.values() for k, v in (svc.get("environment") or {}).items()}
    if "grafana" in services:
        assert env["GF_SECURITY_ADMIN_PASSWORD"] == rt.lab.settings["grafana_admin_password"]
    if "collector" in services:
        assert env["LAB_PROXY_UPSTREAM"] == "http://collector:4317"
    else:
        assert "LAB_PROXY_UPSTREAM" not in env


def test_compose_config_accepts_the_runtime_override_file(model, docker_config, tmp_path):
    """Faults add env through compose.override.yml (the real loader takes it) and collector configs
    through the local slot, which the Collector always loads: its command and mounts stay the same."""
    rt = docker_runtime(model, tmp_path / "state", docker_config, model.stage("module-3"))
    healthy = compose_config(rt)["services"]["collector"]
    extra = model.root / "collector-configs" / "faults" / "auth.yaml"
    rt.lab.overrides = {
        "collector": {"extra_configs": [str(extra)], "env": {"LAB_FAULT_TOKEN": "x"}},
        "proxy": {"extra_configs": [], "env": {"LAB_PROXY_UPSTREAM_HEADERS": "a=b"}},
    }
    rt.lab.save()
    rt.prepare_files()
    assert rt.files()[-1] == rt.override_file
    services = compose_config(rt)["services"]
    assert services["collector"]["command"] == healthy["command"] == rt.collector_args()
    assert services["collector"]["volumes"] == healthy["volumes"]
    mounts = {v["target"]: v["source"] for v in healthy["volumes"]}
    assert mounts["/etc/otelcol-lab"] == str(collector_slot.slot_dir(rt.lab.dir))
    assert "bearertokenauth/otlp" in (collector_slot.slot_dir(rt.lab.dir) / "local-2.yaml").read_text()
    assert services["collector"]["environment"]["LAB_FAULT_TOKEN"] == "x"  # not read by the overlay
    # Overrides merge into, not replace, what the layer files set.
    assert services["collector"]["environment"]["LAB_COLLECTOR_HEALTH_LISTEN"] == "0.0.0.0:13133"
    # The proxy's override env is in its local settings, read at start: its environment stays.
    assert "LAB_PROXY_UPSTREAM_HEADERS" not in services["proxy"]["environment"]
    assert json.loads(proxy_local.path(rt.lab.dir).read_text()) == {"LAB_PROXY_UPSTREAM_HEADERS": "a=b"}
    assert services["proxy"]["environment"]["LAB_PROXY_UPSTREAM"] == "http://collector:4317"


# --- the loader rejects what is wrong ---------------------------------------------------------------------


def run_config(
    model: LabModel, docker_config: Path, files: list[Path], env_files: list[Path]
) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "--config", str(docker_config), "compose", "--project-name", "labctl-broken"]
    cmd += ["--project-directory", str(compose_dir(model))]
    for f in files:
        cmd += ["--file", str(f)]
    for e in env_files:
        cmd += ["--env-file", str(e)]
    return subprocess.run(
        [*cmd, "config", "--quiet"], capture_output=True, text=True, check=False, timeout=60
    )


BROKEN = {
    "unknown-key": ("services:\n  proxy:\n    helthcheck:\n      test: [CMD, 'true']\n", "helthcheck"),
    "bad-port": ('services:\n  proxy:\n    ports: ["127.0.0.1:99999:4317"]\n', "99999"),
    "bad-condition": (
        "services:\n  proxy:\n    depends_on:\n      collector:\n        condition: service_ready\n",
        "depends_on.collector.condition",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_compose_config_rejects_a_broken_file(model, docker_config, tmp_path, case):
    text, named = BROKEN[case]
    rt = docker_runtime(model, tmp_path / "state", docker_config, model.stage("module-2"))
    broken = tmp_path / "broken.yml"
    broken.write_text(text)
    env_files = [compose_dir(model) / "versions.env", rt.env_file]
    files = layer_files(model, 2)
    assert run_config(model, docker_config, files, env_files).returncode == 0  # the files alone are fine
    result = run_config(model, docker_config, [*files, broken], env_files)
    assert result.returncode != 0, f"{case} was accepted"
    assert named in result.stderr, result.stderr


def test_compose_config_rejects_a_layer_without_the_layers_below(model, docker_config, tmp_path):
    rt = docker_runtime(model, tmp_path / "state", docker_config, model.stage("module-4"))
    env_files = [compose_dir(model) / "versions.env", rt.env_file]
    result = run_config(model, docker_config, [compose_dir(model) / "module-4.yml"], env_files)
    assert result.returncode != 0
    # Its network (query, defined with Prometheus), its dependency, or module-4's additions to a layer-3
    # service without that service itself: either way, layer 3 is missing. Compose reports whichever
    # it meets first, and it walks the services in map order (random): any of the three may be named.
    assert (
        'depends on undefined service "prometheus"' in result.stderr
        or "refers to undefined network query" in result.stderr
        or re.search(
            r'service "(prometheus|jaeger|victorialogs)" has neither an image nor a build', result.stderr
        )
    ), result.stderr


def test_compose_config_needs_the_instance_env_file(model, docker_config):
    """Without labctl's per-instance env file the required variables stop compose, naming the variable."""
    result = run_config(model, docker_config, layer_files(model, 4), [compose_dir(model) / "versions.env"])
    assert result.returncode != 0
    assert any(
        var in result.stderr
        for var in ("LAB_PROMETHEUS_TARGETS_DIR", "LAB_GRAFANA_ADMIN_PASSWORD", "LAB_PROXY_IMAGE")
    ), result.stderr
