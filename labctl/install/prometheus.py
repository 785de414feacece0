"""Install Prometheus and promtool from Go modules at the pinned version into the cache."""

from __future__ import annotations

from labctl.install.gobuild import (
    ProgressFn,
    cached_without_go,
    fingerprint,
    go_env,
    go_version,
    has_go,
    is_up_to_date,
    run_go,
    write_stamp,
)
from labctl.install.paths import bin_dir, repo_root
from labctl.install.versions import load_versions, require

MODULE = "github.com/prometheus/prometheus"
BINARIES = ("prometheus", "promtool")


def install_prometheus(*, force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    versions = load_versions(repo_root())
    module_version = require(versions, "LAB_PROMETHEUS_MODULE_VERSION")
    release = require(versions, "LAB_PROMETHEUS_VERSION")
    targets = [bin_dir() / name for name in BINARIES]
    if not has_go() and all(t.is_file() for t in targets) and not force:
        return cached_without_go("prometheus", targets[0])
    digest = fingerprint([go_version(), module_version, release], [])
    if not force and is_up_to_date(targets, digest):
        return {"component": "prometheus", "binary": str(targets[0]), "built": False, "seconds": 0.0}
    bin_dir().mkdir(parents=True, exist_ok=True)
    env = go_env()
    env["GOBIN"] = str(bin_dir())
    # Module v0.3XX.Y is Prometheus v3.XX.Y; stamp the release so `prometheus --version` tells the truth.
    ldflags = f"-X github.com/prometheus/common/version.Version={release}"
    seconds = run_go(
        [
            "install",
            "-trimpath",
            "-ldflags",
            ldflags,
            *(f"{MODULE}/cmd/{name}@{module_version}" for name in BINARIES),
        ],
        cwd=None,
        env=env,
        what="install prometheus",
        progress=progress,
    )
    for target in targets:
        write_stamp(target, digest, {"version": release, "module": f"{MODULE}@{module_version}"})
    return {"component": "prometheus", "binary": str(targets[0]), "built": True, "seconds": round(seconds, 1)}
