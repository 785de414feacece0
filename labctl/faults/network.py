"""`network` and `latency`: switch a hop's permanent relay (native), or cut its network (Docker).

Natively every cuttable hop goes through a permanent pass-through relay (lab.yaml hops' `native_via`):
the proxy exports through the OTLP relay, Prometheus scrapes through the scrape relay, Grafana queries
through the query relay. A fault switches that relay's mode at runtime (labctl/faults/relay_switch.py):
black hole (connections are accepted and never answered — requests hang until the client's own timeout,
like a real partition), refuse, or latency. Nothing is re-pointed, so a cut hop looks like a cut hop,
not like a wrong endpoint. On Docker the hop's own network is cut (labctl/faults/docker_net.py).
The hops, their layers, relays and networks all come from lab/lab.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from labctl.errors import LabError
from labctl.faults import docker_net, relay_switch
from labctl.faults.base import FaultContext, Option
from labctl.faults.records import DockerCut, RelaySwitch
from labctl.model import LabModel, load_model


class CuttableHops(Sequence[str]):
    """lab.yaml's cuttable hops as an option's choices, read when first asked (not at import)."""

    def _names(self) -> tuple[str, ...]:
        return load_model().cuttable_hops()

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())


HOPS = CuttableHops()

NETWORK_OPTIONS = (
    Option("hop", "which hop to cut", choices=HOPS, default="proxy-collector", positional=True),
    Option(
        "mode",
        "hang: connections hang and time out; refuse: connection refused",
        choices=("hang", "refuse"),
        default="hang",
    ),
)
LATENCY_OPTIONS = (
    Option(
        "ms",
        "delay added to every chunk of data on the hop, in milliseconds",
        kind=int,
        default=500,
        positional=True,
    ),
    Option("hop", "which hop to slow down", choices=HOPS, default="proxy-collector"),
)


def hop_layer(model: LabModel, opts: dict[str, Any]) -> int:
    """The layer where a cut of this hop shows first (lab.yaml)."""
    return model.hop(str(opts["hop"])).layer


def _needs(ctx: FaultContext, *services: str) -> None:
    missing = [s for s in services if s not in ctx.running]
    if missing:
        raise LabError(
            f"this fault needs {', '.join(missing)}, which {ctx.lab.stage} does not run",
            "start a later module first, e.g. `labctl up module-3`",
        )


# --- apply / verify / heal --------------------------------------------------------------------------


def apply_network(ctx: FaultContext, opts: dict[str, Any]) -> RelaySwitch | DockerCut:
    return _apply(ctx, str(opts["hop"]), "blackhole" if opts["mode"] == "hang" else "refuse", 0)


def apply_latency(ctx: FaultContext, opts: dict[str, Any]) -> RelaySwitch | DockerCut:
    return _apply(ctx, str(opts["hop"]), "latency", int(opts["ms"]))


def _apply(ctx: FaultContext, name: str, mode: str, latency_ms: int) -> RelaySwitch | DockerCut:
    hop = ctx.model.hop(name)
    # The hop's two ends: its client (lab.yaml `from`) and the service it reaches.
    _needs(ctx, hop.source, hop.target_service)
    if ctx.lab.runtime == "docker":
        if mode == "latency":
            raise LabError(
                "the latency fault runs a relay on this machine, which containers cannot use",
                "use the native runtime (`labctl --runtime native up <module>`) for latency",
            )
        # A real cut of the hop's own network; a stand-in answers for the target as the mode says.
        return docker_net.partition(ctx, name, mode)
    if hop.source == "grafana" and not ctx.runtime.is_running("grafana"):
        raise LabError(
            "Grafana is not running in this lab, so there is no prometheus↔grafana hop to cut",
            "natively Grafana needs its binary (`labctl install grafana`); or use --runtime docker",
        )
    # The client always goes through the hop's relay natively: switch it, re-point nothing.
    return relay_switch.apply(ctx, name, mode, latency_ms)


def verify(ctx: FaultContext, rec: RelaySwitch | DockerCut) -> list[str]:
    if isinstance(rec, DockerCut):
        return docker_net.verify(ctx, rec)
    return relay_switch.verify(ctx, rec)


def heal(ctx: FaultContext, rec: RelaySwitch | DockerCut) -> None:
    if isinstance(rec, DockerCut):
        docker_net.heal(ctx, rec)
    else:
        relay_switch.heal(ctx, rec)


def touches(opts: dict[str, Any]) -> set[str]:
    return {f"hop:{opts.get('hop')}"}
