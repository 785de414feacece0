"""`install(component)`: the entry point `labctl install [component]` calls, and where binaries come from.

Sources (`--from` / `LABCTL_INSTALL_FROM`): `auto` (default), `go` or `archive`.
- collector: auto = the lab's own distribution built with Go when `go` is on PATH, else the official
  otelcol-contrib release archive (a superset of the lab's components), checksum-verified.
- prometheus: auto = built from its Go modules when `go` is on PATH, else the official archive; when
  neither works, the OS package is mentioned only if its major version is the lab's.
- alertmanager: built from its Go module (Go required; module-4's notifications).
- victorialogs: built from its Go module (Go required; module-3's event store).
- jaeger: built from its Go module (Go required; module-3's trace store).
- grpc-front: the proxy's Go gRPC front, built from labctl/proxy/grpcfront (Go required; optional:
  without it the proxy serves gRPC with its Python front).
- grafana: always the official archive (it cannot be built here); a binary you named is used as is.
- claude-code: the pinned npm package (only when asked by name: its licence is the user's to accept).
"""

from __future__ import annotations

import os

from labctl.errors import LabError
from labctl.install import archives
from labctl.install.alertmanager import install_alertmanager
from labctl.install.collector import install_collector
from labctl.install.gobuild import ProgressFn, cached_without_go, has_go
from labctl.install.grafana import install_grafana
from labctl.install.grpcfront import install_grpc_front
from labctl.install.jaeger import install_jaeger
from labctl.install.ospackage import advice, apt_candidate
from labctl.install.paths import bin_dir, repo_root
from labctl.install.prometheus import install_prometheus
from labctl.install.victorialogs import install_victorialogs

COMPONENTS = (
    "collector",
    "prometheus",
    "alertmanager",
    "victorialogs",
    "jaeger",
    "grpc-front",
    "grafana",
    "claude-code",
    "all",
)
SOURCES = ("auto", "go", "archive")
SOURCE_VAR = "LABCTL_INSTALL_FROM"


def install_source(source: str | None = None) -> str:
    """`--from`, else LABCTL_INSTALL_FROM, else auto."""
    value = (source or os.environ.get(SOURCE_VAR) or "auto").strip().lower()
    if value not in SOURCES:
        origin = "--from" if source else SOURCE_VAR
        raise LabError(f"{origin}={value!r} is not a source", "sources: " + ", ".join(SOURCES))
    return value


def install_many(
    components: list[str],
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    source: str | None = None,
) -> list[dict[str, object]]:
    """install() for each component in turn, in one process; an unknown name is refused before anything is
    built."""
    for name in components:
        if name not in COMPONENTS:
            raise LabError(f"unknown component {name!r}", "components: " + ", ".join(COMPONENTS))
    return [r for name in components for r in install(name, force=force, progress=progress, source=source)]


def install(
    component: str = "all",
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    source: str | None = None,
) -> list[dict[str, object]]:
    """Build/install one component (or all); returns one result dict per component.

    For `all`, Grafana's absence is reported in its result (`error`) instead of failing the
    whole install, because the native lab runs without it and says so.
    """
    if component not in COMPONENTS:
        raise LabError(f"unknown component {component!r}", "components: " + ", ".join(COMPONENTS))
    src = install_source(source)
    if component == "collector":
        return [_collector(src, force, progress)]
    if component == "prometheus":
        return [_prometheus(src, force, progress)]
    if component == "alertmanager":
        return [install_alertmanager(force=force, progress=progress)]
    if component == "victorialogs":
        return [install_victorialogs(force=force, progress=progress)]
    if component == "jaeger":
        return [install_jaeger(force=force, progress=progress)]
    if component == "grpc-front":
        return [install_grpc_front(force=force, progress=progress)]
    if component == "grafana":
        return [install_grafana(force=force, source=src, progress=progress)]
    if component == "claude-code":
        from labctl.install.claudecode import install_claude_code

        return [install_claude_code(force=force, progress=progress)]
    results = [_collector(src, force, progress), _prometheus(src, force, progress)]
    if has_go():  # no release archive is wired for it: without Go, `up module-4` says what is missing
        results.append(install_alertmanager(force=force, progress=progress))
        results.append(install_victorialogs(force=force, progress=progress))
        results.append(install_jaeger(force=force, progress=progress))
        results.append(install_grpc_front(force=force, progress=progress))
    try:
        results.append(install_grafana(force=force, source="auto" if src == "go" else src, progress=progress))
    except LabError as exc:
        results.append(
            {"component": "grafana", "binary": None, "built": False, "error": exc.message, "hint": exc.hint}
        )
    return results


def _collector(src: str, force: bool, progress: ProgressFn | None) -> dict[str, object]:
    if src == "go" or (src == "auto" and has_go()):
        return install_collector(force=force, progress=progress)
    own = bin_dir() / "otelcol-lab"
    if src == "auto" and own.is_file() and not force:
        return cached_without_go("collector", own)  # the lab's own build beats the archive
    rel = archives.release("collector", repo_root())
    result = archives.install_archive(rel, force=force, progress=progress)
    result["note"] = (
        f"the official otelcol-contrib {rel.version} serves as otelcol-lab (it has every component "
        "the lab's configs use, and many more); with Go, `labctl install collector --from go` builds "
        "the lab's own distribution"
    )
    return result


def _prometheus(src: str, force: bool, progress: ProgressFn | None) -> dict[str, object]:
    if src == "go":
        return install_prometheus(force=force, progress=progress)
    rel = archives.release("prometheus", repo_root())
    if src == "auto" and not force and archives.is_current(rel):
        return archives.install_archive(rel)  # the official build, with its web UI: keep it
    if src == "auto" and has_go():
        return install_prometheus(force=force, progress=progress)
    targets = [bin_dir() / "prometheus", bin_dir() / "promtool"]
    if src == "auto" and all(t.is_file() for t in targets) and not force:
        return cached_without_go("prometheus", targets[0])
    try:
        return archives.install_archive(rel, force=force, progress=progress)
    except LabError as exc:
        about_os = advice("prometheus", apt_candidate("prometheus"), rel.version)
        if about_os:
            exc.hint = f"{exc.hint}; {about_os}" if exc.hint else about_os
        raise
