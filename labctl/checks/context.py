"""What every layer's checks share: the lab, the marker, counters taken before it was sent, and waits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labctl.model import LabModel
from labctl.poll import poll
from labctl.state import LabState

if TYPE_CHECKING:
    # The marker module loads the OpenTelemetry SDK; service_env's callers (a fault's break) need none of it.
    from labctl.checks.marker import Marker


@dataclass
class CheckContext:
    lab: LabState
    model: LabModel
    running: list[str]
    marker: Marker | None = None
    before: dict[str, Any] = field(default_factory=dict)  # counters snapshotted before the marker
    reached: dict[str, bool] = field(default_factory=dict)  # "proxy", "collector", "prometheus"
    notes: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda msg: None
    scrape_interval: float = 5.0
    slow_hop_ms: float = 500.0  # an empty export slower than this is a slow hop

    def url(self, service: str, port: str, path: str = "") -> str:
        return self.lab.url(service, port) + path

    def runs(self, service: str) -> bool:
        return service in self.running


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll until `check()` returns something truthy (returned) or timeout (last value returned)."""
    return poll(check, timeout, interval)


def service_env(lab: LabState, model: LabModel, service: str) -> dict[str, str]:
    """A service's env as the runtime starts it: lab.yaml env (+ when-running extras) + overrides."""
    from labctl.model import Placement

    running = model.stage_services(lab.stage, lab.runtime) if lab.stage else []
    where = Placement(
        runtime=lab.runtime,  # type: ignore[arg-type]
        ports=lab.ports,
        repo=model.root,
        settings=lab.settings,
        data_dirs={s: lab.data_dir(s) for s in model.services},
        lab_dir=lab.dir,
    )
    env = model.service_env(service, where, running)
    env.update(lab.overrides.get(service, {}).get("env", {}))
    return env
