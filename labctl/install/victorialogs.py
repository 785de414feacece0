"""Build VictoriaLogs (the lab's event store, module-3 on) from its Go module at the pinned version.

`go install` of `app/victoria-logs` is the whole recipe: its web UI is part of the module.
"""

from __future__ import annotations

import os

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

MODULE = "github.com/VictoriaMetrics/VictoriaLogs"
BINARY = "victoria-logs"


def install_victorialogs(*, force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    version = require(load_versions(repo_root()), "LAB_VICTORIALOGS_MODULE_VERSION")
    target = bin_dir() / BINARY
    if not has_go() and target.is_file() and not force:
        return cached_without_go("victorialogs", target)
    digest = fingerprint([go_version(), version], [])
    if not force and is_up_to_date([target], digest):
        return {"component": "victorialogs", "binary": str(target), "built": False, "seconds": 0.0}
    staging = bin_dir() / ".victorialogs-build"
    staging.mkdir(parents=True, exist_ok=True)
    env = go_env()
    env["GOBIN"] = str(staging)
    seconds = run_go(
        ["install", "-trimpath", "-ldflags", "-s -w", f"{MODULE}/app/victoria-logs@{version}"],
        cwd=None,
        env=env,
        what="install victorialogs",
        progress=progress,
    )
    os.replace(staging / BINARY, target)  # atomic: a running lab never sees half a binary
    staging.rmdir()
    write_stamp(target, digest, {"version": version.lstrip("v"), "module": f"{MODULE}@{version}"})
    return {"component": "victorialogs", "binary": str(target), "built": True, "seconds": round(seconds, 1)}
