"""Install Prometheus and promtool from Go modules at the pinned version into the cache.

`go install` alone gives a Prometheus without its web UI (the UI's JavaScript is not compiled into
the module); students need that UI in module-3. So when Node.js is present, the module's own UI
sources (web/ui, in the module) are built with pnpm and embedded (`-tags builtinassets`), exactly as
Prometheus' release process does. Without Node.js, or if the UI build fails, Prometheus is built
without it (the HTTP API is complete) and the result says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from labctl import ui
from labctl.errors import LabError
from labctl.install.gobuild import (
    ProgressFn,
    cached_without_go,
    fingerprint,
    go_env,
    go_version,
    has_go,
    is_up_to_date,
    module_dir,
    run_go,
    stamp_path,
    write_stamp,
)
from labctl.install.paths import bin_dir, cache_dir, repo_root
from labctl.install.versions import load_versions, require

MODULE = "github.com/prometheus/prometheus"
BINARIES = ("prometheus", "promtool")
PNPM = "pnpm@10.34.9"
# The UI lockfile names @mantine/code-highlight 9.7.2, which not every npm registry mirror serves;
# 9.6.2 is API-compatible for the UI's use (syntax highlighting in the query explainer).
UI_OVERRIDES = {"@mantine/code-highlight": "9.6.2"}
# Bump when the UI recipe changes, so cached builds are redone.
UI_RECIPE = f"ui-v1 {PNPM} {json.dumps(UI_OVERRIDES, sort_keys=True)}"


def want_ui() -> bool:
    if os.environ.get("LABCTL_PROMETHEUS_UI", "1") == "0":
        return False
    return shutil.which("node") is not None and shutil.which("npx") is not None


def install_prometheus(*, force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    versions = load_versions(repo_root())
    module_version = require(versions, "LAB_PROMETHEUS_MODULE_VERSION")
    release = require(versions, "LAB_PROMETHEUS_VERSION")
    targets = [bin_dir() / name for name in BINARIES]
    if not has_go() and all(t.is_file() for t in targets) and not force:
        return cached_without_go("prometheus", targets[0])
    with_ui = want_ui()
    digest = fingerprint([go_version(), module_version, release], [])
    if not force and is_up_to_date(targets, digest) and _ui_current(targets[0], with_ui):
        return {"component": "prometheus", "binary": str(targets[0]), "built": False, "seconds": 0.0}
    bin_dir().mkdir(parents=True, exist_ok=True)
    # Module v0.3XX.Y is Prometheus v3.XX.Y; stamp the release so `prometheus --version` tells the truth.
    ldflags = f"-X github.com/prometheus/common/version.Version={release}"
    note = ""
    seconds = 0.0
    built_ui = False
    if with_ui:
        try:
            seconds = _build_with_ui(module_version, ldflags, progress)
            built_ui = True
        except LabError as exc:
            note = f"built without the web UI: {exc.message}"
            ui.warn(f"prometheus: {note} (the API works; `labctl install prometheus --force` retries)")
    else:
        note = "built without the web UI (Node.js/npx not found); the HTTP API is complete"
        ui.warn(f"prometheus: {note}")
    if not built_ui:
        env = go_env()
        env["GOBIN"] = str(bin_dir())
        pkgs = [f"{MODULE}/cmd/{name}@{module_version}" for name in BINARIES]
        seconds += run_go(
            ["install", "-trimpath", "-ldflags", ldflags, *pkgs],
            cwd=None,
            env=env,
            what="install prometheus",
            progress=progress,
        )
    for target in targets:
        info = {"version": release, "module": f"{MODULE}@{module_version}", "web_ui": str(built_ui)}
        if built_ui:
            info["ui_recipe"] = UI_RECIPE
        write_stamp(target, digest, info)
    result: dict[str, object] = {
        "component": "prometheus",
        "binary": str(targets[0]),
        "built": True,
        "seconds": round(seconds, 1),
        "web_ui": built_ui,
    }
    if note:
        result["note"] = note
    return result


def _ui_current(binary: Path, with_ui: bool) -> bool:
    """A build with the current UI recipe is always fine; one without a UI only when none can be built."""
    try:
        stamp = json.loads(stamp_path(binary).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stamp.get("web_ui") == "True":
        return stamp.get("ui_recipe") == UI_RECIPE
    return not with_ui


def _run(cmd: list[str], cwd: Path, what: str, progress: ProgressFn | None) -> None:
    if progress:
        progress(f"{what}…")
    log = cache_dir() / "logs" / f"{what.replace(' ', '-')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CI": "true"}  # pnpm: no interactive prompts
    with log.open("w", encoding="utf-8") as out:
        rc = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode
    if rc != 0:
        tail = "\n  ".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-10:])
        raise LabError(f"{what} failed (exit {rc}):\n  {tail}", f"full output in {log}")


def _build_with_ui(module_version: str, ldflags: str, progress: ProgressFn | None) -> float:
    """Prometheus' release recipe: build web/ui with pnpm, gzip+embed it, go build -tags builtinassets."""
    import time

    start = time.monotonic()
    work = cache_dir() / "build" / f"prometheus-{module_version}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(module_dir(MODULE, module_version), work)
    for path in [work, *work.rglob("*")]:  # the module cache is read-only
        path.chmod(path.stat().st_mode | 0o200)
    ui_dir = work / "web" / "ui"
    package = json.loads((ui_dir / "package.json").read_text())
    package.setdefault("pnpm", {})["overrides"] = UI_OVERRIDES
    (ui_dir / "package.json").write_text(json.dumps(package, indent=2))
    pnpm = ["npx", "--yes", PNPM]
    _run([*pnpm, "install", "--no-frozen-lockfile"], ui_dir, "prometheus ui pnpm install", progress)
    _run([*pnpm, "run", "build:module"], ui_dir, "prometheus ui build modules", progress)
    _run([*pnpm, "run", "build:mantine-ui"], ui_dir, "prometheus ui build", progress)
    _run(["bash", "scripts/compress_assets.sh"], work, "prometheus ui compress", progress)
    env = go_env()
    env["GOWORK"] = "off"  # the module's go.work names folders the module zip does not ship
    run_go(
        ["build", "-tags", "builtinassets", "-trimpath", "-ldflags", ldflags, "-o", str(bin_dir()) + os.sep]
        + [f"./cmd/{name}" for name in BINARIES],
        cwd=work,
        env=env,
        what="build prometheus with web ui",
        progress=progress,
    )
    shutil.rmtree(work, ignore_errors=True)  # ~1 GB of node_modules: not worth keeping
    return time.monotonic() - start
