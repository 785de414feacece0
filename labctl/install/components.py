"""`install(component)`: the entry point `labctl install [component]` calls."""

from __future__ import annotations

from labctl.errors import LabError
from labctl.install.collector import install_collector
from labctl.install.gobuild import ProgressFn
from labctl.install.grafana import install_grafana
from labctl.install.prometheus import install_prometheus

COMPONENTS = ("collector", "prometheus", "grafana", "all")


def install(
    component: str = "all", *, force: bool = False, progress: ProgressFn | None = None
) -> list[dict[str, object]]:
    """Build/install one component (or all); returns one result dict per component.

    For `all`, Grafana's absence is reported in its result (`error`) instead of failing the
    whole install, because the native lab runs without it and says so.
    """
    if component not in COMPONENTS:
        raise LabError(f"unknown component {component!r}", "components: " + ", ".join(COMPONENTS))
    if component == "collector":
        return [install_collector(force=force, progress=progress)]
    if component == "prometheus":
        return [install_prometheus(force=force, progress=progress)]
    if component == "grafana":
        return [install_grafana(force=force)]
    results = [
        install_collector(force=force, progress=progress),
        install_prometheus(force=force, progress=progress),
    ]
    try:
        results.append(install_grafana(force=force))
    except LabError as exc:
        results.append(
            {"component": "grafana", "binary": None, "built": False, "error": exc.message, "hint": exc.hint}
        )
    return results
