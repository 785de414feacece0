"""Docker runtime: a partition cuts one hop's own network and nothing else.

The compose files give every hop its own network (lab.yaml hops' `network`: ingest for proxy →
Collector, scrape for Collector → Prometheus, query for Prometheus → Grafana). Cutting a hop disconnects
the hop's target (lab.yaml `to`: the side that stops answering) from that network
only — its published ports and its other hops stay — and puts a stand-in in its place under the same
name, so the peer sees what it would see on a real cut network, exactly as on the native runtime:
  hang    the stand-in accepts connections and never answers (labctl's relay in blackhole mode): the
          peer's requests hang until its own timeout
  refuse  the stand-in listens on nothing: the peer's connections are refused
Heal removes the stand-in and reconnects the target with its service name as alias (without the alias
the compose service name would no longer resolve for its peers).

The stand-in runs labctl's relay (`python -m labctl.faults.relay`) from the lab's proxy image, so it
needs no other image. It carries the project's compose labels: `labctl down` removes it like any
container of the lab.
"""

from __future__ import annotations

import subprocess
from typing import Any

from labctl.errors import LabError
from labctl.faults.records import DockerCut
from labctl.poll import poll
from labctl.runtimes import compose_names
from labctl.runtimes.compose_names import compose_project
from labctl.runtimes.docker_images import clean_call

DOCKER_MODES = {"blackhole": "hang", "refuse": "refuse"}


def project_name(ctx: Any) -> str:
    return compose_project(ctx.lab.instance)


def hop_network(ctx: Any, hop: str) -> str:
    """The hop's own compose network (lab.yaml hops' `network`)."""
    network = ctx.model.hop(hop).network
    if not network:
        raise LabError(f"the {hop} hop has no network of its own in lab.yaml", "cut another hop")
    return str(network)


def network_name(ctx: Any, hop: str) -> str:
    return compose_names.network_name(ctx.lab.instance, hop_network(ctx, hop))


def container_name(ctx: Any, service: str) -> str:
    return compose_names.container_name(ctx.lab.instance, service)


def _docker(ctx: Any, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    call = list(getattr(ctx.runtime, "client_call", None) or ["docker"])
    try:
        return subprocess.run(
            [*clean_call(call), *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"docker {args[0]} did not run: {exc}", "is the engine up? `labctl doctor`") from None


def _must(ctx: Any, *args: str) -> str:
    out = _docker(ctx, *args)
    if out.returncode != 0:
        _failed(args, out)
    return out.stdout


def _failed(args: tuple[str, ...], out: subprocess.CompletedProcess[str]) -> None:
    # The daemon's own words, not the CLI's closing "Run 'docker … --help'" line.
    lines = [line for line in out.stderr.strip().splitlines() if "--help" not in line]
    said = " ".join(lines) or f"exit {out.returncode}"
    raise LabError(
        f"`docker {' '.join(args[:3])} …` failed: {said}", "is the lab up in docker? `labctl status`"
    )


def copy_into(ctx: Any, path: Any, service: str, target: str) -> None:
    """`docker cp` a file of the state directory into a service's container."""
    _must(ctx, "cp", str(path), f"{container_name(ctx, service)}:{target}")


def partition(ctx: Any, hop: str, mode: str = "blackhole") -> DockerCut:
    net_key, service = hop_network(ctx, hop), ctx.model.hop(hop).target_service
    net, target = network_name(ctx, hop), container_name(ctx, service)
    image = ctx.lab.settings.get("proxy_image")
    if not image:
        raise LabError("this docker lab has no proxy image recorded", "run `labctl up <module>` again")
    ports = [p.container for p in ctx.model.service(service).ports.values()]
    stand_in = f"{project_name(ctx)}-cut-{net_key}"
    _docker(ctx, "rm", "--force", stand_in)  # a leftover of an interrupted break
    routes = [a for port in ports for a in ("--route", f"0.0.0.0:{port}=127.0.0.1:9")]
    try:
        _run_stand_in(
            ctx,
            "--detach",
            "--name",
            stand_in,
            "--network",
            net,
            "--network-alias",
            service,
            "--label",
            f"com.docker.compose.project={project_name(ctx)}",
            "--label",
            f"com.docker.compose.service=cut-{net_key}",
            "--label",
            "com.docker.compose.oneoff=False",
            "--label",
            "com.docker.compose.container-number=1",
            "--label",
            f"org.labctl.fault=network {hop}",
            image,
            "python",
            "-m",
            "labctl.faults.relay",
            "--mode",
            mode,
            *routes,
        )
        # The stand-in takes the name before the target leaves: the name never resolves to nothing, and
        # the peer sees the promised failure (hang or refuse) from the first moment, not a DNS error.
        _await_stand_in(ctx, stand_in)
        _must(ctx, "network", "disconnect", net, target)
    except LabError:
        _docker(ctx, "rm", "--force", stand_in)
        raise
    return DockerCut(hop=hop, mode=mode, service=service, network=net, container=target, stand_in=stand_in)


def _run_stand_in(ctx: Any, *args: str) -> None:
    """`docker run` the stand-in; once more after removing a same-named container that the engine was
    still removing (a heal's `rm --force` a moment before)."""
    out = _docker(ctx, "run", *args)
    if out.returncode != 0 and "already in use" in out.stderr:
        _docker(ctx, "rm", "--force", args[args.index("--name") + 1])
        out = _docker(ctx, "run", *args)
    if out.returncode != 0:
        _failed(("run", *args), out)


def _await_stand_in(ctx: Any, stand_in: str, timeout: float = 20.0) -> None:
    """The relay prints one line once its listeners are in place (`relay <pid>: <mode> …`)."""

    def outcome() -> str:
        if _docker(ctx, "logs", stand_in).stdout.startswith("relay "):
            return "listening"
        running = _docker(ctx, "inspect", "--format", "{{.State.Running}}", stand_in).stdout.strip()
        return "exited" if running == "false" else ""

    if poll(outcome, timeout, 0.1) == "listening":
        return
    said = (_docker(ctx, "logs", stand_in).stderr.strip().splitlines() or ["no output"])[-1]
    raise LabError(
        f"the stand-in {stand_in} did not start within {timeout:g} s: {said}",
        "is the proxy image intact? `labctl images`",
    )


def verify(ctx: Any, rec: DockerCut) -> list[str]:
    import json

    attached = json.loads(
        _must(ctx, "inspect", "--format", "{{json .NetworkSettings.Networks}}", rec.container)
    )
    if rec.network in attached:
        raise LabError(f"{rec.container} is still attached to {rec.network}")
    evidence = [
        f"{rec.container} is disconnected from {rec.network} (its other networks and published ports stay)"
    ]
    running = _docker(ctx, "inspect", "--format", "{{.State.Running}}", rec.stand_in).stdout.strip()
    if running != "true":
        raise LabError(
            f"the stand-in {rec.stand_in} for {rec.service} is not running",
            f"`docker logs {rec.stand_in}` says why",
        )
    what = "accepts connections and never answers" if rec.mode == "blackhole" else "refuses connections"
    evidence.append(f"on {rec.network}, the name {rec.service} now {what}")
    return evidence


def heal(ctx: Any, rec: DockerCut) -> None:
    _docker(ctx, "rm", "--force", rec.stand_in)
    out = _docker(ctx, "network", "connect", "--alias", rec.service, rec.network, rec.container)
    if out.returncode != 0 and "already exists" not in out.stderr:
        raise LabError(
            f"docker network connect {rec.network} {rec.container} failed: {out.stderr.strip()}",
            f"reconnect it by hand: docker network connect --alias {rec.service} "
            f"{rec.network} {rec.container}",
        )
