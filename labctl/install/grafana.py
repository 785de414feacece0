"""Grafana for the native runtime: the official release archive (it is not built from source here).

A Grafana you named (LABCTL_GRAFANA_BIN) or have on PATH is used as is; otherwise
`labctl install grafana` downloads the archive for this OS/arch, checks its SHA-256 against the
published one and unpacks it into the lab's cache. Where the archive cannot be reached, the error
says every other way (docker runtime, a local mirror, your own binary); it never pretends.
"""

from __future__ import annotations

import os
import shutil

from labctl.errors import LabError
from labctl.install import archives
from labctl.install.gobuild import ProgressFn
from labctl.install.paths import repo_root
from labctl.install.resolve import env_var_for, grafana_home, resolve_binary


def install_grafana(
    *, force: bool = False, source: str = "auto", progress: ProgressFn | None = None
) -> dict[str, object]:
    if source == "go":
        raise LabError(
            "Grafana cannot be built here (the lab only builds the Collector and Prometheus with Go)",
            "run `labctl install grafana` (the official archive), or use the docker runtime",
        )
    if source == "auto" and (os.environ.get(env_var_for("grafana")) or shutil.which("grafana")):
        binary = resolve_binary("grafana")  # yours: used as is, never replaced by a download
        home = grafana_home(binary)
        return {
            "component": "grafana",
            "binary": str(binary),
            "home": str(home),
            "built": False,
            "seconds": 0.0,
        }
    rel = archives.release("grafana", repo_root())
    result = archives.install_archive(rel, force=force, progress=progress)
    result["home"] = str(rel.dist_dir)
    return result
