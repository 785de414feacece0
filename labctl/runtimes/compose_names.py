"""What Docker calls a lab instance's things: its compose project, a service's container, a network.

Compose derives every name from the project; the runtime, the Docker faults and the checks that probe
from inside a container all need the same names, so they are made here and nowhere else.
"""

from __future__ import annotations


def compose_project(instance: str) -> str:
    """The compose project of one lab instance (compose takes lower-case project names only)."""
    return f"labctl-{instance}".lower()


def container_name(instance: str, service: str) -> str:
    """The container of a service: compose v2 names it <project>-<service>-<index>, and the lab runs one."""
    return f"{compose_project(instance)}-{service}-1"


def network_name(instance: str, network: str) -> str:
    """A compose network of the lab (lab.yaml hops' `network`) as Docker knows it."""
    return f"{compose_project(instance)}_{network}"
