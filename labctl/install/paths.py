"""Where the lab keeps binaries it built, and where the Go sources of its Collector are."""

from __future__ import annotations

import os
from pathlib import Path

from labctl.errors import LabError
from labctl.model import repo_root as model_repo_root


def cache_dir() -> Path:
    """`${LABCTL_CACHE_DIR:-~/.cache/labctl}`."""
    configured = os.environ.get("LABCTL_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "labctl"


def bin_dir() -> Path:
    return cache_dir() / "bin"


def repo_root() -> Path:
    """The lab's tree; installs need collector-configs/distribution (Go sources live there, not in the package)."""
    root = model_repo_root()
    if not (root / "collector-configs" / "distribution" / "go.mod").is_file():
        raise LabError(
            f"{root} has no collector-configs/distribution/go.mod (the lab's Collector sources)",
            "run labctl from a full checkout of the lab repository",
        )
    return root
