"""Find a binary: env override, then PATH, then the lab's cache — else say how to install it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from labctl import ui
from labctl.errors import LabError
from labctl.install.paths import bin_dir

# binary name -> the `labctl install` component that provides it
BINARIES: dict[str, str] = {
    "otelcol-lab": "collector",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "grafana": "grafana",
    "alertmanager": "alertmanager",
    "amtool": "alertmanager",
    "victoria-logs": "victorialogs",
    "jaeger": "jaeger",
}

# A role another binary can fill, looked for in the cache after the role's own name: without Go,
# `labctl install collector` installs the official otelcol-contrib, a superset of otelcol-lab.
ALTERNATES: dict[str, tuple[str, ...]] = {"otelcol-lab": ("otelcol-contrib",)}
_announced: set[Path] = set()

# The lab's rules, flags and OTLP receiver need Prometheus 3: an older one on PATH (Debian 12 ships
# 2.42) is passed over, with a word, rather than started and failing in obscure ways.
MIN_MAJOR: dict[str, int] = {"prometheus": 3, "promtool": 3}


def env_var_for(name: str) -> str:
    """`otelcol-lab` -> `LABCTL_OTELCOL_LAB_BIN`."""
    return "LABCTL_" + name.upper().replace("-", "_") + "_BIN"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def resolve_binary(name: str) -> Path:
    if name not in BINARIES:
        raise LabError(
            f"unknown binary {name!r}",
            "known binaries: " + ", ".join(sorted(BINARIES)),
        )
    var = env_var_for(name)
    configured = os.environ.get(var)
    if configured:
        path = Path(configured).expanduser()
        if not _is_executable(path):
            raise LabError(
                f"{var} points to {path}, which is not an executable file",
                f"fix {var} or unset it to use PATH and the lab's cache ({bin_dir()})",
            )
        return path
    on_path = shutil.which(name)
    if on_path and _new_enough(name, Path(on_path)):
        return Path(on_path)
    cached = bin_dir() / name
    if _is_executable(cached):
        return cached
    for other in ALTERNATES.get(name, ()):
        stand_in = bin_dir() / other
        if _is_executable(stand_in):
            _announce(name, stand_in)
            return stand_in
    component = BINARIES[name]
    hint = f"run `labctl install {component}`, put {name} on PATH, or set {var}=<path>"
    if component == "grafana":
        hint = (
            "run `labctl install grafana` (the official release archive, checksum-verified), put grafana "
            f"on PATH or set {var}=<unpacked archive>/bin/grafana, or use the docker runtime "
            "(`labctl --runtime docker up module-4`)"
        )
    raise LabError(f"{name} was not found (looked at ${var}, PATH and {bin_dir()})", hint)


def _new_enough(name: str, path: Path) -> bool:
    """False only when the binary states a major version below the lab's minimum."""
    minimum = MIN_MAJOR.get(name)
    if minimum is None:
        return True
    try:
        out = subprocess.run(
            [str(path), "--version"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return True
    found = re.search(r"version (\d+)\.\d+", out.stdout + out.stderr)
    if not found or int(found.group(1)) >= minimum:
        return True
    ui.warn(
        f"{path} is {name} {found.group(0).split()[-1]}; the lab needs {minimum}.x, so PATH is skipped "
        f"(`labctl install prometheus` puts one in {bin_dir()})"
    )
    return False


def _announce(name: str, path: Path) -> None:
    """Say once per process which binary fills the role, so nobody wonders which Collector runs."""
    if path in _announced:
        return
    _announced.add(path)
    try:
        version = json.loads(path.with_name(f".{path.name}.stamp.json").read_text(encoding="utf-8"))[
            "version"
        ]
    except (OSError, ValueError, KeyError):
        version = "of unknown version"
    ui.info(
        f"{name}: using {path} — the official {path.name} {version} (a superset of the lab's components); "
        f"`labctl install collector --from go` builds the lab's own {name}"
    )


def grafana_home(binary: Path) -> Path:
    """Grafana's --homepath: `LABCTL_GRAFANA_HOME`, else the unpacked archive the binary sits in."""
    configured = os.environ.get("LABCTL_GRAFANA_HOME")
    home = Path(configured).expanduser() if configured else binary.resolve().parent.parent
    if not (home / "conf" / "defaults.ini").is_file():
        raise LabError(
            f"Grafana's home directory {home} has no conf/defaults.ini",
            "set LABCTL_GRAFANA_HOME to the unpacked Grafana archive (the folder holding conf/ and public/)",
        )
    return home
