"""`labctl install claude-code`: the pinned npm package @anthropic-ai/claude-code, in the lab's cache.

Installed with `npm install --prefix <cache>/claude-code/<version>` (never vendored in the lab's tree),
so `labctl claude` runs exactly the version compose/versions.env pins, next to any `claude` the user has.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from labctl.errors import LabError
from labctl.install.gobuild import ProgressFn
from labctl.install.paths import cache_dir
from labctl.install.versions import load_versions, require
from labctl.model import repo_root

PACKAGE = "@anthropic-ai/claude-code"
VERSION_KEY = "LAB_CLAUDE_CODE_VERSION"
LICENCE_NOTE = (
    "Claude Code is Anthropic's commercial software, not part of the lab: its licence (Anthropic's "
    "Commercial Terms, see LICENSE.md in the package) is yours to accept; labctl only installs the "
    "pinned version from the npm registry into its cache"
)


def pinned_version() -> str:
    return require(load_versions(repo_root()), VERSION_KEY)


def prefix(version: str | None = None) -> Path:
    return cache_dir() / "claude-code" / (version or pinned_version())


def binary(version: str | None = None) -> Path:
    return prefix(version) / "node_modules" / ".bin" / "claude"


def installed_version(version: str | None = None) -> str | None:
    """The version of the package in the cache's prefix for `version`, or None when it is not there."""
    manifest = prefix(version) / "node_modules" / PACKAGE / "package.json"
    try:
        found = json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None
    return found if isinstance(found, str) and binary(version).exists() else None


def resolve() -> Path:
    """The pinned client's executable; LabError saying how to install it when it is missing."""
    version = pinned_version()
    if installed_version(version) != version:
        raise LabError(
            f"Claude Code {version} is not installed in the lab's cache ({prefix(version)})",
            "run `labctl install claude-code` (it downloads the pinned npm package; its licence is yours to accept)",
        )
    return binary(version)


def install_claude_code(force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    version = pinned_version()
    target = prefix(version)
    result: dict[str, object] = {
        "component": "claude-code",
        "version": version,
        "binary": str(binary(version)),
        "source": "npm",
        "note": LICENCE_NOTE,
    }
    if not force and installed_version(version) == version:
        return {**result, "built": False}
    npm = shutil.which("npm")
    if npm is None:
        raise LabError(
            "npm is not installed (it installs Claude Code)",
            "install Node.js and npm (Debian: `apt-get install nodejs npm`), then run this again",
        )
    if force and target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"npm install {PACKAGE}@{version} (into {target})")
    started = time.monotonic()
    cmd = [
        npm,
        "install",
        "--prefix",
        str(target),
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--loglevel=error",
        f"{PACKAGE}@{version}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(
            f"npm install {PACKAGE}@{version} took more than 15 minutes",
            "check the network access to the npm registry, then run `labctl install claude-code` again",
        ) from None
    if done.returncode != 0 or installed_version(version) != version:
        last = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise LabError(
            f"npm install {PACKAGE}@{version} failed (exit {done.returncode}):\n{last}",
            "check the network access to the npm registry (npm config get registry), then run "
            "`labctl install claude-code --force`",
        )
    return {**result, "built": True, "seconds": time.monotonic() - started}
