"""Docker runtime's faults, in milliseconds: the exact docker CLI commands labctl issues.

A recorder stands in for the `docker` binary (the runtime's client_call), so this checks the commands
and the alias restoration; tests/docker/ runs the same faults on a real engine.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from labctl.faults import auth, docker_net, endpoint
from labctl.faults.base import FaultContext
from labctl.runtimes import collector_slot, proxy_local
from labctl.runtimes.docker import DockerRuntime
from labctl.state import LabState, find_free_ports

REPO = Path(__file__).resolve().parents[2]


def _recorder(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "docker"
    script.write_text(
        f"#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        # A stand-in's log: its relay is listening (what `docker logs` of a started relay shows).
        "if sys.argv[1] == 'logs': print('relay 1: refuse 0.0.0.0:8888 -> 127.0.0.1:9')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


@pytest.mark.integration
def test_partition_disconnects_target_and_heal_restores_alias(tmp_path: Path) -> None:
    script, log = _recorder(tmp_path)
    lab = LabState(
        dir=tmp_path / "lab",
        runtime="docker",
        stage="module-3",
        instance="class1",
        settings={"proxy_image": "labctl-proxy:abc"},
    )
    runtime = DockerRuntime(lab, client_call=[str(script)])  # the real docker runtime, recorder as CLI
    ctx = SimpleNamespace(runtime=runtime, lab=lab, model=runtime.model)
    rec = docker_net.partition(ctx, "collector-prometheus", "refuse")
    assert rec.container == "labctl-class1-collector-1"
    docker_net.heal(ctx, rec)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    net, ctr, stand_in = "labctl-class1_scrape", "labctl-class1-collector-1", "labctl-class1-cut-scrape"
    # The stand-in takes the name and listens before the target leaves the network.
    assert calls[0] == ["rm", "--force", stand_in]
    run = calls[1]
    assert run[:8] == [
        "run",
        "--detach",
        "--name",
        stand_in,
        "--network",
        net,
        "--network-alias",
        "collector",
    ]
    assert "com.docker.compose.project=labctl-class1" in run  # `labctl down` removes it with the lab
    image = run.index("labctl-proxy:abc")
    assert run[image + 1 : image + 6] == ["python", "-m", "labctl.faults.relay", "--mode", "refuse"]
    assert "0.0.0.0:8889=127.0.0.1:9" in run  # every port of the collector answers as the mode says
    assert calls[2:4] == [["logs", stand_in], ["network", "disconnect", net, ctr]]
    assert calls[4:] == [
        ["rm", "--force", stand_in],
        ["network", "connect", "--alias", "collector", net, ctr],
    ]


def test_each_hop_has_its_own_network(tmp_path: Path) -> None:
    from labctl.model import load_model

    ctx = SimpleNamespace(
        runtime=SimpleNamespace(), lab=SimpleNamespace(instance="default"), model=load_model()
    )
    assert docker_net.project_name(ctx) == "labctl-default"
    assert docker_net.network_name(ctx, "proxy-collector") == "labctl-default_ingest"
    assert docker_net.network_name(ctx, "collector-prometheus") == "labctl-default_scrape"
    assert docker_net.network_name(ctx, "prometheus-grafana") == "labctl-default_query"
    assert docker_net.container_name(ctx, "prometheus") == "labctl-default-prometheus-1"


def _docker_ctx(tmp_path: Path, proxy_admin: int | None = None) -> tuple[FaultContext, list[str]]:
    script, _log = _recorder(tmp_path)
    lab = LabState(dir=tmp_path / "lab", runtime="docker", stage="module-3", instance="class1")
    runtime = DockerRuntime(lab, client_call=[str(script)])
    lab.ports = runtime.model.default_ports()
    if proxy_admin is not None:  # the published admin port, played by a real proxy process
        lab.ports["proxy"]["admin"] = proxy_admin
    lab.save()
    # Without an engine a recreate cannot become healthy: record which services the runtime would
    # recreate (its `compose up --force-recreate`, tested in tests/foundation) and check the override.
    restarted: list[str] = []
    runtime.restart = restarted.append  # type: ignore[method-assign]
    return FaultContext(lab=lab, runtime=runtime, model=runtime.model), restarted


@pytest.fixture
def real_proxy(tmp_path: Path) -> Iterator[int]:
    """A real proxy process (as in the docker lab: upstream `collector:4317`) whose admin port stands in
    for the container's published one; yields that port."""
    grpc_port, http_port, admin = find_free_ports(3)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LAB_PROXY_OTLP_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
        "LAB_PROXY_OTLP_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "LAB_PROXY_ADMIN_LISTEN": f"127.0.0.1:{admin}",
        "LAB_PROXY_DATA_DIR": str(tmp_path / "proxy-data"),
        "LAB_PROXY_UPSTREAM": "http://collector:4317",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labctl",
            "proxy",
            "serve",
            "--config",
            str(REPO / "lab" / "proxy" / "proxy.yaml"),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{admin}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail("the proxy did not become ready")
        yield admin
    finally:
        proc.terminate()
        proc.wait(10)


def _upstream(admin: int) -> dict:  # type: ignore[type-arg]
    return requests.get(f"http://127.0.0.1:{admin}/api/stats", timeout=5).json()["upstream"]  # type: ignore[no-any-return]


@pytest.mark.integration
def test_endpoint_fault_in_docker_retargets_the_running_proxy(tmp_path: Path, real_proxy: int) -> None:
    ctx, restarted = _docker_ctx(tmp_path, proxy_admin=real_proxy)
    rec = endpoint.apply(ctx, {"kind": "unreachable-host"})
    assert restarted == [] and not ctx.runtime.override_file.exists()  # type: ignore[attr-defined]
    assert _upstream(real_proxy)["endpoint"] == "http://collector.invalid:4317"
    endpoint.heal(ctx, rec)
    assert _upstream(real_proxy)["endpoint"] == "http://collector:4317"
    assert _upstream(real_proxy)["configured"] is True
    assert restarted == []


@pytest.mark.integration
def test_invalid_url_in_docker_goes_to_the_proxy_local_settings_and_heal_empties_them(tmp_path: Path) -> None:
    """The bad URL goes where the proxy reads it at start (its mounted local settings), not into the
    container's environment: no compose override, so the same container is restarted."""
    ctx, restarted = _docker_ctx(tmp_path)
    rec = endpoint.apply(ctx, {"kind": "invalid-url"})
    assert restarted == ["proxy"]
    assert not ctx.runtime.override_file.exists()  # type: ignore[attr-defined]
    local = proxy_local.path(ctx.lab.dir)
    assert json.loads(local.read_text()) == {"LAB_PROXY_UPSTREAM": "grpc://collector:4317"}
    ctx.remove_overrides(rec.overrides[0])
    assert json.loads(local.read_text()) == {}
    assert LabState.load(ctx.lab.dir).overrides == {}
    assert restarted == ["proxy", "proxy"]


@pytest.mark.integration
def test_auth_fault_in_docker_mounts_the_overlay_and_breaks_the_proxy_token(
    tmp_path: Path, real_proxy: int
) -> None:
    ctx, restarted = _docker_ctx(tmp_path, proxy_admin=real_proxy)
    rec = auth.apply(ctx, {"token": "wrong"})
    assert restarted == ["collector"]  # the proxy gets its new headers at runtime
    # The overlay and its token go into the Collector's local slot: no compose override at all, so
    # neither its command nor its environment change (the runtime reloads it in place when it runs).
    assert not ctx.runtime.override_file.exists()  # type: ignore[attr-defined]
    slot = collector_slot.slot_paths(ctx.lab.dir)
    assert f"token: {rec.secret}" in slot[1].read_text()
    assert "LAB_FAULT_AUTH_TOKEN" not in slot[1].read_text()
    assert _upstream(real_proxy)["header_names"] == ["authorization"]
    ctx.remove_overrides(rec.collector)
    from labctl.faults import proxy_admin

    proxy_admin.reset_upstream(ctx)
    assert not ctx.runtime.override_file.exists()  # type: ignore[attr-defined]
    assert [p.read_text() for p in slot] == ["{}\n", "{}\n"]
    assert restarted == ["collector", "collector"]
    assert _upstream(real_proxy)["header_names"] == [] and _upstream(real_proxy)["configured"] is True
