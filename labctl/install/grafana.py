"""Grafana for the native runtime: only a binary the user provides.

No registry this lab may use ships Grafana, its official archive cannot be
downloaded from machines like the CI one, and it is not built from source here.
So `labctl install grafana` resolves a user-provided binary or says exactly how
to get one; it never pretends.
"""

from __future__ import annotations

from labctl.errors import LabError
from labctl.install.paths import repo_root
from labctl.install.resolve import env_var_for, grafana_home, resolve_binary
from labctl.install.versions import load_versions, require


def install_grafana(*, force: bool = False) -> dict[str, object]:
    versions = load_versions(repo_root())
    version = require(versions, "LAB_GRAFANA_VERSION")
    image = versions.get("LAB_GRAFANA_IMAGE", f"grafana/grafana:{version}")
    var = env_var_for("grafana")
    try:
        binary = resolve_binary("grafana")
    except LabError as exc:
        raise LabError(
            "Grafana cannot be installed automatically: no official Grafana archive is reachable from "
            "this machine and no package registry the lab uses ships it",
            f"either use the docker runtime (image {image}), or download "
            f"grafana-{version}.linux-amd64.tar.gz from Grafana's download page on a machine with internet, "
            f"check its SHA-256 against the published one, unpack it here and set {var}=<unpacked dir>/bin/grafana "
            "(or put it on PATH). Without Grafana, native module-4 runs without it and says so.",
        ) from exc
    home = grafana_home(binary)
    return {"component": "grafana", "binary": str(binary), "home": str(home), "built": False, "seconds": 0.0}
