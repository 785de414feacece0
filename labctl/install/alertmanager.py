"""Build Alertmanager and amtool from their Go module at the pinned version into the cache.

Alertmanager's module embeds its web UI from `ui/app/dist`, which the module zip does not ship (the
release process builds it with Elm and npm). The lab builds from a copy of the module with a one-page
stand-in there, so the binary starts, its HTTP API (`/api/v2/...`) is complete, and the page at `/`
says where to look instead: `amtool` for alerts and silences, the lab's notifications view for what
was delivered.
"""

from __future__ import annotations

import os
import shutil

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
    write_stamp,
)
from labctl.install.paths import bin_dir, cache_dir, repo_root
from labctl.install.versions import load_versions, require

MODULE = "github.com/prometheus/alertmanager"
BINARIES = ("alertmanager", "amtool")
# Bump when the stand-in page or the build recipe changes, so cached builds are redone.
RECIPE = "ui-standin-v1"
STANDIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Alertmanager (lab build)</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>Alertmanager</h1>
<p>This lab build has no web UI (its sources need Elm and npm to build). Everything else works:</p>
<ul>
<li>alerts: <a href="api/v2/alerts">api/v2/alerts</a>, groups: <a href="api/v2/alerts/groups">api/v2/alerts/groups</a></li>
<li>silences: <a href="api/v2/silences">api/v2/silences</a>, or <code>amtool silence add ...</code></li>
<li>status and the loaded config: <a href="api/v2/status">api/v2/status</a></li>
<li>what reached the receiver: <code>labctl url notify-receiver</code></li>
</ul>
</body></html>
"""


def install_alertmanager(*, force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    versions = load_versions(repo_root())
    module_version = require(versions, "LAB_ALERTMANAGER_MODULE_VERSION")
    targets = [bin_dir() / name for name in BINARIES]
    if not has_go() and all(t.is_file() for t in targets) and not force:
        return cached_without_go("alertmanager", targets[0])
    digest = fingerprint([go_version(), module_version, RECIPE], [])
    if not force and is_up_to_date(targets, digest):
        return {"component": "alertmanager", "binary": str(targets[0]), "built": False, "seconds": 0.0}
    work = cache_dir() / "build" / f"alertmanager-{module_version}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(module_dir(MODULE, module_version), work)
    for path in [work, *work.rglob("*")]:  # the module cache is read-only
        path.chmod(path.stat().st_mode | 0o200)
    for flavour in ("elm", "mantine"):  # ui/web.go embeds app/dist/{elm,mantine}
        page = work / "ui" / "app" / "dist" / flavour / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(STANDIN_PAGE, encoding="utf-8")
    bin_dir().mkdir(parents=True, exist_ok=True)
    env = go_env()
    env["GOWORK"] = "off"
    release = module_version.lstrip("v")
    partial = bin_dir() / ".alertmanager-build"
    partial.mkdir(exist_ok=True)
    seconds = run_go(
        ["build", "-trimpath", "-ldflags", f"-s -w -X github.com/prometheus/common/version.Version={release}"]
        + ["-o", str(partial) + os.sep]
        + [f"./cmd/{name}" for name in BINARIES],
        cwd=work,
        env=env,
        what="build alertmanager",
        progress=progress,
    )
    for target in targets:
        os.replace(partial / target.name, target)  # atomic: a running lab never sees half a binary
        write_stamp(
            target, digest, {"version": release, "module": f"{MODULE}@{module_version}", "web_ui": "stand-in"}
        )
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "component": "alertmanager",
        "binary": str(targets[0]),
        "built": True,
        "seconds": round(seconds, 1),
        "note": "built with a one-page stand-in for the web UI; the API and amtool are complete",
    }
