"""Build Jaeger (the lab's trace store, module-3 on) from its Go module at the pinned version.

Jaeger v2 is `cmd/jaeger` in the module `github.com/jaegertracing/jaeger`, whose v1.x tags carry the
v2.x release of the same day (module v1.75.0 is Jaeger 2.12.0). Its go.mod has a replace directive, so
`go install module@version` refuses it; the lab builds in a copy of the module instead, where that
go.mod is the main module's, exactly as the release does.

The web UI is a separate JavaScript project (jaeger-ui) that the module does not ship, and it is not
published built in any package (its package is private): the binary then serves a placeholder page at
`/`. The lab swaps that placeholder for a short page linking the HTTP API (`/api/services`,
`/api/traces`), which is complete; the lab's native runtime serves lab/jaeger/ui/ instead (the query
service's `ui.assets_path`, lab/lab.yaml), a page that can change without a rebuild. Grafana's Jaeger
datasource and the official image (Docker runtime) show the traces graphically.
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

MODULE = "github.com/jaegertracing/jaeger"
BINARY = "jaeger"
# Bump when the stand-in page or the build recipe changes, so cached builds are redone.
RECIPE = "ui-standin-v1"
STANDIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><base href="/"><title>Jaeger (lab build)</title></head>
<body style="font-family: sans-serif; max-width: 42em; margin: 2em auto">
<h1>Jaeger, the lab's trace store</h1>
<p>This lab build has no web UI (Jaeger's UI is a separate JavaScript project). The query API is
complete; Grafana's Jaeger datasource (module 4) and the Docker runtime's image draw the traces.</p>
<ul>
<li>services: <a href="api/services">api/services</a></li>
<li>span names of Claude Code: <a href="api/services/claude-code/operations">api/services/claude-code/operations</a></li>
<li>one session's traces: <code>api/traces?service=claude-code&amp;tags={"session.id":"&lt;id&gt;"}</code></li>
<li>one trace: <code>api/traces/&lt;trace id&gt;</code></li>
</ul>
<pre>
// JAEGER_CONFIG_JS
JAEGER_CONFIG = DEFAULT_CONFIG;
JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;
JAEGER_VERSION = DEFAULT_VERSION;
</pre>
</body></html>
"""


def install_jaeger(*, force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    versions = load_versions(repo_root())
    module_version = require(versions, "LAB_JAEGER_MODULE_VERSION")
    release = require(versions, "LAB_JAEGER_VERSION")
    target = bin_dir() / BINARY
    if not has_go() and target.is_file() and not force:
        return cached_without_go("jaeger", target)
    digest = fingerprint([go_version(), module_version, release, RECIPE], [])
    if not force and is_up_to_date([target], digest):
        return {"component": "jaeger", "binary": str(target), "built": False, "seconds": 0.0}
    work = cache_dir() / "build" / f"jaeger-{module_version}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(module_dir(MODULE, module_version), work)
    for path in [work, *work.rglob("*")]:  # the module cache is read-only
        path.chmod(path.stat().st_mode | 0o200)
    # cmd/query/app/ui serves placeholder/index.html when no built UI is embedded.
    (work / "cmd" / "query" / "app" / "ui" / "placeholder" / "index.html").write_text(
        STANDIN_PAGE, encoding="utf-8"
    )
    bin_dir().mkdir(parents=True, exist_ok=True)
    env = go_env()
    env["GOWORK"] = "off"
    partial = bin_dir() / ".jaeger-build"
    partial.mkdir(exist_ok=True)
    version_flag = f"-X {MODULE}/internal/version.latestVersion=v{release}"
    try:
        seconds = run_go(
            [
                "build",
                "-trimpath",
                "-ldflags",
                f"-s -w {version_flag}",
                "-o",
                str(partial) + os.sep,
                "./cmd/jaeger",
            ],
            cwd=work,
            env=env,
            what="build jaeger",
            progress=progress,
        )
        os.replace(partial / BINARY, target)  # atomic: a running lab never sees half a binary
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    write_stamp(
        target, digest, {"version": release, "module": f"{MODULE}@{module_version}", "web_ui": "stand-in"}
    )
    return {
        "component": "jaeger",
        "binary": str(target),
        "built": True,
        "seconds": round(seconds, 1),
        "note": "built with a one-page stand-in for the web UI; the query API is complete",
    }
