"""Build the lab's own Collector distribution (collector-configs/distribution) into the cache."""

from __future__ import annotations

import os
from pathlib import Path

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

BINARY = "otelcol-lab"


def source_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "collector-configs" / "distribution"


def build_fingerprint(root: Path | None = None) -> str:
    root = root or repo_root()
    src = source_dir(root)
    versions = load_versions(root)
    files = sorted(
        p for p in src.iterdir() if p.is_file() and (p.suffix == ".go" or p.name.startswith("go."))
    )
    parts = [
        go_version(),
        require(versions, "LAB_COLLECTOR_CORE_VERSION"),
        require(versions, "LAB_COLLECTOR_CONTRIB_VERSION"),
    ]
    return fingerprint(parts, files)


def install_collector(*, force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    root = repo_root()
    versions = load_versions(root)
    core = require(versions, "LAB_COLLECTOR_CORE_VERSION")
    target = bin_dir() / BINARY
    if not has_go() and target.is_file() and not force:
        return cached_without_go("collector", target)
    digest = build_fingerprint(root)
    if not force and is_up_to_date([target], digest):
        return {"component": "collector", "binary": str(target), "built": False, "seconds": 0.0}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{BINARY}.partial")
    seconds = run_go(
        [
            "build",
            "-trimpath",
            "-ldflags",
            f"-s -w -X main.version={core}-lab",
            "-o",
            str(partial),
            ".",
        ],
        cwd=source_dir(root),
        env=go_env(),
        what="build otelcol-lab",
        progress=progress,
    )
    # Replace atomically so a running lab never sees a half-written binary.
    os.replace(partial, target)
    write_stamp(target, digest, {"version": f"{core}-lab", "source": "collector-configs/distribution"})
    return {"component": "collector", "binary": str(target), "built": True, "seconds": round(seconds, 1)}
