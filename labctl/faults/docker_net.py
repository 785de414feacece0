"""Docker runtime: a partition is a real network cut — `docker network disconnect` of the hop's target
container from the lab network, and on heal `docker network connect --alias <service>` (without the alias
the compose service name would no longer resolve for its peers).

All commands go through python-on-whales, which shells out to the docker CLI; tests point its
`client_call` at a recorder to check the exact commands without an engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labctl.errors import LabError

if TYPE_CHECKING:
    from python_on_whales import DockerClient

# hop -> the service whose container is cut off (the hop's target: the side that stops answering)
HOP_TARGET = {"proxy-collector": "collector", "collector-prometheus": "collector",
              "prometheus-grafana": "prometheus"}


def project_name(ctx: Any) -> str:
    return str(getattr(ctx.runtime, "project", None) or f"labctl-{ctx.lab.instance}")


def network_name(ctx: Any) -> str:
    return str(getattr(ctx.runtime, "network", None) or f"{project_name(ctx)}_default")


def container_name(ctx: Any, service: str) -> str:
    # Compose v2 names containers <project>-<service>-<index>.
    return f"{project_name(ctx)}-{service}-1"


def client(ctx: Any) -> DockerClient:
    from python_on_whales import DockerClient  # imported when used: keeps `labctl --help` fast

    call = getattr(ctx.runtime, "client_call", None)
    return DockerClient(client_call=list(call) if call else ["docker"],
                        compose_project_name=project_name(ctx))


def partition(ctx: Any, hop: str) -> dict[str, Any]:
    from python_on_whales.exceptions import DockerException

    service = HOP_TARGET[hop]
    net, ctr = network_name(ctx), container_name(ctx, service)
    try:
        client(ctx).network.disconnect(net, ctr)
    except DockerException as exc:  # carries the CLI's stderr
        raise LabError(f"docker network disconnect {net} {ctr} failed: {exc}",
                       "is the lab up in docker? `labctl status`") from None
    return {"docker": True, "hop": hop, "service": service, "network": net, "container": ctr, "relays": []}


def verify(ctx: Any, rec: dict[str, Any]) -> list[str]:
    from python_on_whales.exceptions import DockerException

    try:
        inspected = client(ctx).container.inspect(rec["container"])
        networks = list(inspected.network_settings.networks or {})
    except DockerException as exc:
        raise LabError(f"cannot inspect {rec['container']}: {exc}") from None
    if rec["network"] in networks:
        raise LabError(f"{rec['container']} is still attached to {rec['network']}")
    return [f"{rec['container']} is disconnected from {rec['network']} (its peers cannot reach it)"]


def heal(ctx: Any, rec: dict[str, Any]) -> None:
    from python_on_whales.exceptions import DockerException

    try:
        client(ctx).network.connect(rec["network"], rec["container"], alias=rec["service"])
    except DockerException as exc:
        raise LabError(f"docker network connect {rec['network']} {rec['container']} failed: {exc}",
                       f"reconnect it by hand: docker network connect --alias {rec['service']} "
                       f"{rec['network']} {rec['container']}") from None
