"""The official release archives: otelcol-contrib, Prometheus and Grafana, for this OS/arch.

Each project publishes a `.tar.gz` per OS/arch and a SHA-256 checksum file beside it (release
layouts as published by the projects; versions from compose/versions.env, the same releases as the
docker images):

- Collector: `otelcol-contrib_<v>_<os>_<arch>.tar.gz` with
  `opentelemetry-collector-releases_otelcol-contrib_checksums.txt` (goreleaser) in the
  opentelemetry-collector-releases GitHub release `v<v>`; the binary `otelcol-contrib` at the top.
- Prometheus: `prometheus-<v>.<os>-<arch>.tar.gz` with `sha256sums.txt` in the GitHub release
  `v<v>`; binaries in the folder `prometheus-<v>.<os>-<arch>/`.
- Grafana: `grafana-<v>.<os>-<arch>.tar.gz` with `<archive>.sha256` beside it on Grafana's download
  site; one top folder (`grafana-v<v>/`) holding `bin/grafana`, `conf/`, `public/`.

A classroom (or a test) points the lab at its own copy: `LABCTL_<COMPONENT>_DOWNLOAD_URL` is the
folder holding one component's two files (`{version}` is replaced), or `LABCTL_DOWNLOAD_MIRROR` a
base URL with the files under `<base>/<component>/<version>/`.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabError
from labctl.install.download import expected_sha256, fetch, safe_extract, verify
from labctl.install.gobuild import ProgressFn, is_up_to_date, write_stamp
from labctl.install.paths import bin_dir, cache_dir
from labctl.install.versions import load_versions, require

MIRROR_VAR = "LABCTL_DOWNLOAD_MIRROR"
# Which module first needs the component: for the "use the docker runtime" hint.
_MODULE = {"collector": "module-2", "prometheus": "module-3", "grafana": "module-4"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "ppc64le"}


def url_var(component: str) -> str:
    return f"LABCTL_{component.upper()}_DOWNLOAD_URL"


def platform_names() -> tuple[str, str]:
    """(os, arch) as the projects name them: linux/darwin, amd64/arm64/ppc64le."""
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower())
    if system not in ("linux", "darwin") or arch is None:
        raise LabError(
            f"no official release archive is known for {platform.system()}/{platform.machine()}",
            "use the docker runtime, or put the binaries on PATH / set LABCTL_<NAME>_BIN",
        )
    return system, arch


@dataclass(frozen=True)
class Release:
    component: str  # collector | prometheus | grafana
    title: str  # what the user reads
    version: str
    archive: str  # file name of the .tar.gz
    checksums: str  # file name of the published checksum file
    default_base: str  # the project's release folder (holds both files)
    binaries: dict[str, str]  # name in the lab's bin/ -> path inside the archive's top folder

    @property
    def base(self) -> str:
        own = os.environ.get(url_var(self.component))
        if own:
            return own.replace("{version}", self.version).rstrip("/")
        mirror = os.environ.get(MIRROR_VAR)
        if mirror:
            return f"{mirror.rstrip('/')}/{self.component}/{self.version}"
        return self.default_base

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    @property
    def dist_dir(self) -> Path:
        return cache_dir() / "dist" / self.archive.removesuffix(".tar.gz")

    @property
    def fingerprint(self) -> str:
        return f"archive {self.archive}"


def release(component: str, root: Path) -> Release:
    versions = load_versions(root)
    os_name, arch = platform_names()
    if component == "collector":
        # The docker image's release: the archive must be the same Collector the docker runtime runs.
        image = require(versions, "LAB_COLLECTOR_IMAGE")
        version = image.rsplit(":", 1)[-1].removeprefix("v")
        return Release(
            component,
            "otelcol-contrib",
            version,
            f"otelcol-contrib_{version}_{os_name}_{arch}.tar.gz",
            "opentelemetry-collector-releases_otelcol-contrib_checksums.txt",
            f"https://github.com/open-telemetry/opentelemetry-collector-releases/releases/download/v{version}",
            {"otelcol-contrib": "otelcol-contrib"},
        )
    if component == "prometheus":
        version = require(versions, "LAB_PROMETHEUS_VERSION")
        return Release(
            component,
            "Prometheus",
            version,
            f"prometheus-{version}.{os_name}-{arch}.tar.gz",
            "sha256sums.txt",
            f"https://github.com/prometheus/prometheus/releases/download/v{version}",
            {"prometheus": "prometheus", "promtool": "promtool"},
        )
    if component == "grafana":
        version = require(versions, "LAB_GRAFANA_VERSION")
        archive = f"grafana-{version}.{os_name}-{arch}.tar.gz"
        return Release(
            component,
            "Grafana",
            version,
            archive,
            f"{archive}.sha256",
            "https://dl.grafana.com/oss/release",
            {"grafana": "bin/grafana"},
        )
    raise LabError(
        f"no release archive is known for {component!r}", "components: collector, prometheus, grafana"
    )


def fallback_hint(rel: Release) -> str:
    """What to do when the archive cannot be had: every other way to get this component."""
    names = list(rel.binaries)
    if rel.component == "collector":
        names = ["otelcol-lab"]
    bins = " / ".join(f"LABCTL_{n.upper().replace('-', '_')}_BIN" for n in names)
    ways = [f"use the docker runtime (`labctl --runtime docker up {_MODULE[rel.component]}`)"]
    if rel.component in ("collector", "prometheus"):
        ways.append(f"install Go 1.26+ and run `labctl install {rel.component} --from go`")
    ways.append(
        f"copy {rel.archive} and {rel.checksums} from the project's release page to a local mirror and set "
        f"{MIRROR_VAR}=<url> (files under <url>/{rel.component}/{rel.version}/) or {url_var(rel.component)}=<folder url>"
    )
    ways.append(f"or put {', '.join(names)} on PATH / set {bins}")
    return "; ".join(ways)


def is_current(rel: Release) -> bool:
    return rel.dist_dir.is_dir() and is_up_to_date([bin_dir() / n for n in rel.binaries], rel.fingerprint)


def _top(unpacked: Path) -> Path:
    """The archive's single top folder if it has one (Prometheus, Grafana), else the folder itself."""
    entries = list(unpacked.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return unpacked


def install_archive(
    rel: Release, *, force: bool = False, progress: ProgressFn | None = None
) -> dict[str, object]:
    """Download, verify, unpack into the cache's dist/ and link the binaries into bin/, with a stamp."""
    targets = [bin_dir() / name for name in rel.binaries]
    result: dict[str, object] = {
        "component": rel.component,
        "binary": str(targets[0]),
        "built": False,
        "seconds": 0.0,
        "source": "archive",
        "version": rel.version,
    }
    if not force and is_current(rel):
        return result
    start = time.monotonic()
    hint = fallback_hint(rel)
    cache_dir().mkdir(parents=True, exist_ok=True)
    final = rel.dist_dir
    # Everything happens in a temporary folder inside the cache (same filesystem: the final move is a
    # rename); on any failure it disappears and the cache is as it was.
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir()) as tmp_name:
        tmp = Path(tmp_name)
        sums_url = rel.url(rel.checksums)
        sums = tmp / "checksums"
        fetch(sums_url, sums, what=rel.checksums, hint=hint, progress=progress)
        expected = expected_sha256(sums.read_text(encoding="utf-8", errors="replace"), rel.archive, sums_url)
        archive = tmp / rel.archive
        url = rel.url(rel.archive)
        fetch(url, archive, what=f"{rel.title} {rel.version}", hint=hint, progress=progress)
        if progress:
            progress(f"verifying {rel.archive}…")
        digest = verify(archive, expected, url=url, checksum_url=sums_url, hint=hint)
        unpacked = tmp / "unpacked"
        safe_extract(archive, unpacked)
        top = _top(unpacked)
        for name, inner in rel.binaries.items():
            path = top / inner
            if not path.is_file():
                raise LabError(
                    f"{rel.archive} has no {inner} (expected the {name} binary there); nothing was installed",
                    "the mirror holds a different archive than the project publishes: " + hint,
                )
            path.chmod(path.stat().st_mode | 0o111)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(final.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        os.replace(top, staging)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
    bin_dir().mkdir(parents=True, exist_ok=True)
    for target, inner in zip(targets, rel.binaries.values(), strict=True):
        # A relative symlink: Grafana finds its home (conf/, public/) from the resolved binary, and the
        # whole cache can be copied to another machine.
        fresh = target.with_name(f".{target.name}.new")
        if fresh.is_symlink() or fresh.exists():
            fresh.unlink()
        fresh.symlink_to(os.path.relpath(final / inner, target.parent))
        os.replace(fresh, target)
        write_stamp(
            target,
            rel.fingerprint,
            {"version": rel.version, "source": "archive", "url": url, "sha256": digest},
        )
    result.update(built=True, seconds=round(time.monotonic() - start, 1), url=url, sha256=digest)
    return result
