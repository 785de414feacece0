"""`labctl backup` and `labctl restore`: the lab's stored data, in one directory with a manifest.

A backup holds
- prometheus/  a TSDB snapshot taken through the admin API (POST /api/v1/admin/tsdb/snapshot; the lab
               runs Prometheus with --web.enable-admin-api): consistent blocks, the head included;
- proxy/       the spool (unsent requests, copied with SQLite's online backup), the JSON Lines log and
               the sessions the inspector counted;
- grafana/     Grafana's database, when Grafana runs;
- lab/         lab.json: ports, generated settings (Grafana's admin password goes with its database);
- manifest.json  written last: format, versions, and every file's size and SHA-256.

Restore checks the whole manifest before it touches anything: a missing manifest, a file missing,
shorter or different from what the manifest says, an unknown format or a Prometheus of another major
version is refused with a clear error and the running lab and its data stay as they are. Then it stops
the lab, moves the current data aside, puts the backup's in place and starts the backup's stage again;
if that start fails, the previous data is put back.

Over 500 lines because backup and restore share the manifest and the place of every part on each
runtime: kept together, a part added to one cannot be missed by the other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import labctl
from labctl import ui
from labctl.errors import LabError
from labctl.model import LabModel
from labctl.runtimes.base import Runtime, get_runtime
from labctl.state import LabState

FORMAT = 1
KIND = "labctl-backup"
MANIFEST = "manifest.json"
# Files of the proxy's data dir a backup keeps (relative to it); the spool is copied with SQLite's backup API.
PROXY_FILES = ("inspect/records.jsonl", "inspect/records.jsonl.1")
SPOOL = "spool.sqlite"
SESSIONS = "inspect/sessions.json"


@dataclass
class Manifest:
    directory: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str | None:
        return self.data.get("stage")

    @property
    def parts(self) -> dict[str, Any]:
        return dict(self.data.get("parts") or {})


def default_dir(lab: LabState) -> Path:
    """Beside the lab's state directory, not inside it: `labctl down --volumes` must not delete it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return lab.dir.parent / "backups" / f"{lab.instance}-{stamp}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _versions(model: LabModel) -> dict[str, str]:
    v = model.versions
    return {
        "labctl": labctl.__version__,
        "prometheus": v.get("LAB_PROMETHEUS_VERSION", ""),
        "grafana": v.get("LAB_GRAFANA_VERSION", ""),
        "collector": v.get("LAB_COLLECTOR_CORE_VERSION", ""),
    }


# --- backup ------------------------------------------------------------------------------------------------


def backup(runtime: Runtime, to: Path | None = None) -> Manifest:
    lab = runtime.lab
    if not lab.stage:
        raise LabError(
            "no lab is running: there is nothing to back up", "start one with `labctl up <module>`"
        )
    dest = (to or default_dir(lab)).expanduser().resolve()
    if dest.exists() and any(dest.iterdir()):
        raise LabError(
            f"{dest} exists and is not empty", "pass a new directory with --to (a backup never overwrites)"
        )
    staging = dest.with_name(
        dest.name + ".partial"
    )  # renamed only when complete: a partial backup is obvious
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    os.chmod(staging, 0o700)  # lab.json holds generated secrets
    parts: dict[str, Any] = {}
    try:
        running = [r.service for r in runtime.status() if r.state == "running"]
        if "prometheus" in running:
            parts["prometheus"] = _backup_prometheus(runtime, staging / "prometheus")
        if "proxy" in running:
            parts["proxy"] = _backup_proxy(runtime, staging / "proxy")
        if "grafana" in running:
            parts["grafana"] = _backup_grafana(runtime, staging / "grafana")
        (staging / "lab").mkdir()
        state = json.loads(lab.path.read_text())
        (staging / "lab" / "lab.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        parts["lab"] = {"stage": lab.stage, "runtime": lab.runtime}
        files = {
            p.relative_to(staging).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        data = {
            "kind": KIND,
            "format": FORMAT,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "instance": lab.instance,
            "runtime": lab.runtime,
            "stage": lab.stage,
            "versions": _versions(runtime.model),
            "parts": parts,
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Manifest(dest, data)


def _backup_prometheus(runtime: Runtime, dest: Path) -> dict[str, Any]:
    base = runtime.lab.url("prometheus", "web")
    try:
        r = requests.post(base + "/api/v1/admin/tsdb/snapshot", timeout=120)
    except requests.RequestException as exc:
        raise LabError(f"Prometheus did not answer the snapshot request: {exc}", "`labctl status`") from None
    if r.status_code != 200:
        raise LabError(
            f"Prometheus refused the TSDB snapshot (HTTP {r.status_code}): {r.text.strip()}",
            "the lab starts Prometheus with --web.enable-admin-api; `labctl logs prometheus` says more",
        )
    name = r.json()["data"]["name"]
    if runtime.name == "docker":
        docker = _docker(runtime)
        inside = f"{runtime.model.service('prometheus').docker_data}/snapshots/{name}"
        docker.copy_from("prometheus", inside, dest)
        docker.exec_in("prometheus", ["rm", "-rf", inside])
    else:
        snapshot = runtime.lab.data_dir("prometheus") / "tsdb" / "snapshots" / name
        shutil.copytree(snapshot, dest)
        shutil.rmtree(snapshot)  # the data dir keeps no copy: snapshots would pile up there
    blocks = sorted(p.name for p in dest.iterdir() if (p / "meta.json").is_file()) if dest.is_dir() else []
    if not dest.is_dir():
        dest.mkdir(parents=True)  # an empty TSDB gives an empty snapshot
    return {"snapshot": name, "blocks": blocks}


def _backup_proxy(runtime: Runtime, dest: Path) -> dict[str, Any]:
    dest.mkdir(parents=True)
    try:
        sessions = requests.get(
            runtime.lab.url("proxy", "admin") + "/api/sessions",
            timeout=30,
            headers=runtime.lab.admin_headers(),
        ).json()["sessions"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise LabError(
            f"the proxy did not list its sessions: {exc}", "`labctl status`, `labctl logs proxy`"
        ) from None
    if runtime.name == "docker":
        docker = _docker(runtime)
        data = runtime.model.service("proxy").docker_data
        script = (
            "import os, shutil, sqlite3, sys\n"
            f"d = {data!r}; out = os.path.join(d, '.backup'); shutil.rmtree(out, ignore_errors=True)\n"
            "os.makedirs(os.path.join(out, 'inspect'))\n"
            f"spool = os.path.join(d, {SPOOL!r})\n"
            "if os.path.exists(spool):\n"
            f"    sqlite3.connect(spool).backup(sqlite3.connect(os.path.join(out, {SPOOL!r})))\n"
            f"for rel in {PROXY_FILES!r}:\n"
            "    if os.path.exists(os.path.join(d, rel)): shutil.copyfile(os.path.join(d, rel), os.path.join(out, rel))\n"
        )
        code, output = docker.exec_in("proxy", ["python", "-c", script])
        if code != 0:
            raise LabError(
                f"copying the proxy's data inside its container failed: {output}", "`labctl logs proxy`"
            )
        docker.copy_from("proxy", f"{data}/.backup/.", dest)
        docker.exec_in("proxy", ["rm", "-rf", f"{data}/.backup"])
    else:
        data_dir = runtime.lab.data_dir("proxy")
        if (data_dir / SPOOL).is_file():
            _sqlite_copy(data_dir / SPOOL, dest / SPOOL)
        for rel in PROXY_FILES:
            if (data_dir / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                _copy_whole_lines(data_dir / rel, dest / rel)
    for rel in PROXY_FILES:
        if (dest / rel).is_file():
            _trim_to_last_line(dest / rel)  # the writer may be mid-line: keep whole records only
    (dest / SESSIONS).parent.mkdir(parents=True, exist_ok=True)
    (dest / SESSIONS).write_text(json.dumps({"sessions": sessions}, indent=1))
    return {"sessions": len(sessions), "spool": (dest / SPOOL).is_file()}


def _backup_grafana(runtime: Runtime, dest: Path) -> dict[str, Any]:
    dest.mkdir(parents=True)
    if runtime.name == "docker":
        # The image has no sqlite tool: Grafana is paused for the copy, so the database file is consistent.
        _copy_paused(runtime, "grafana", f"{runtime.model.service('grafana').docker_data}/grafana.db", dest)
    else:
        _sqlite_copy(runtime.lab.data_dir("grafana") / "grafana.db", dest / "grafana.db")
    return {"database": "grafana.db"}


def _copy_paused(runtime: Runtime, service: str, path: str, dest: Path) -> None:
    """`docker cp` a file out of a service's container while the container is paused (its processes
    frozen, so a database file is not copied halfway through a write), into the folder dest."""
    docker = _docker(runtime)
    docker._compose(lambda c: c.compose.pause([service]), f"pause {service}")
    try:
        docker.copy_from(service, path, dest / Path(path).name)
    finally:
        docker._compose(lambda c: c.compose.unpause([service]), f"unpause {service}")


def _sqlite_copy(src: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (its writers keep going)."""
    with (
        contextlib.closing(sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)) as s,
        contextlib.closing(sqlite3.connect(dest)) as d,
    ):
        s.backup(d)


def _copy_whole_lines(src: Path, dest: Path) -> None:
    size = src.stat().st_size  # the writer appends: copy what is there now, not what comes after
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        remaining = size
        while remaining > 0:
            chunk = fin.read(min(remaining, 1 << 20))
            if not chunk:
                break
            fout.write(chunk)
            remaining -= len(chunk)


def _trim_to_last_line(path: Path) -> None:
    """Cut a half-written last record off (only the file's tail is read: logs run to tens of MB)."""
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        tail_start = max(0, size - (1 << 20))
        fh.seek(tail_start)
        tail = fh.read()
        if not tail or tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        fh.truncate(tail_start + cut + 1 if cut >= 0 else tail_start)


def _docker(runtime: Runtime) -> Any:
    from labctl.runtimes.docker import DockerRuntime

    assert isinstance(runtime, DockerRuntime)
    return runtime


# --- verify ------------------------------------------------------------------------------------------------


def verify(directory: Path, model: LabModel) -> Manifest:
    """The backup as its manifest describes it, or LabError naming the first problem. Reads only."""
    directory = directory.expanduser().resolve()
    if not directory.is_dir():
        raise LabError(f"{directory} is not a directory", "pass the directory `labctl backup` printed")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        hint = (
            "this backup was interrupted (.partial): take a new one with `labctl backup`"
            if directory.name.endswith(".partial")
            else "pass the directory `labctl backup` printed"
        )
        raise LabError(f"{directory} has no {MANIFEST}: not a complete labctl backup", hint)
    try:
        data = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(
            f"{manifest_path} is unreadable: {exc}", "the backup is damaged; use another one"
        ) from None
    if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(data.get("files"), dict):
        raise LabError(
            f"{manifest_path} is not a labctl backup manifest", "pass the directory `labctl backup` printed"
        )
    if data.get("format") != FORMAT:
        raise LabError(
            f"the backup has format {data.get('format')!r}; this labctl reads format {FORMAT}",
            "restore it with the labctl version that made it "
            f"({(data.get('versions') or {}).get('labctl', 'unknown')})",
        )
    ours = _versions(model)
    theirs = str((data.get("versions") or {}).get("prometheus", ""))
    if "prometheus" in (data.get("parts") or {}) and theirs.split(".")[0] != ours["prometheus"].split(".")[0]:
        raise LabError(
            f"the backup's TSDB is from Prometheus {theirs}; this lab runs Prometheus {ours['prometheus']}",
            "restore it into a lab of the same major version (compose/versions.env)",
        )
    problems: list[str] = []
    for rel, entry in sorted(data["files"].items()):
        path = directory / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(f"{rel}: a path outside the backup")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif (size := path.stat().st_size) != entry.get("bytes"):
            why = "truncated" if size < int(entry.get("bytes") or 0) else "changed"
            problems.append(f"{rel}: {size} bytes, the manifest says {entry.get('bytes')} ({why})")
        elif _sha256(path) != entry.get("sha256"):
            problems.append(f"{rel}: its SHA-256 differs from the manifest's (corrupt)")
    listed = set(data["files"]) | {MANIFEST}
    extra = [p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()]
    problems += [f"{rel}: not in the manifest" for rel in sorted(set(extra) - listed)]
    if "lab/lab.json" not in data["files"]:
        problems.append("lab/lab.json: missing from the manifest")
    if problems:
        shown = problems[:8] + ([f"... and {len(problems) - 8} more"] if len(problems) > 8 else [])
        raise LabError(
            f"the backup in {directory} is damaged; nothing was restored and the lab is unchanged:\n  "
            + "\n  ".join(shown),
            "use another backup (or take a new one with `labctl backup`)",
        )
    return Manifest(directory, data)


# --- restore -----------------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    directory: Path
    stage: str
    runtime: str
    parts: list[str]
    seconds: float  # all of it
    start_seconds: float = 0.0  # of which: starting the lab again (`up` of the backup's stage)


def restore(manifest: Manifest, model: LabModel, state_dir: Path, runtime_name: str) -> RestoreResult:
    """Stop the lab, swap the data in, start the backup's stage. `manifest`: from verify() (which hashes
    every file: not done twice); `runtime_name`: the lab's."""
    started = time.monotonic()
    saved = json.loads((manifest.directory / "lab" / "lab.json").read_text())
    stage = manifest.stage or saved.get("stage")
    if not stage or stage not in model.stages:
        raise LabError(f"the backup names no known stage ({stage!r})", "the manifest is from another lab")
    if LabState.exists(state_dir):
        current = LabState.load(state_dir, salvage=True)  # stopped either way, even another labctl's
        from labctl.faults.engine import forget_faults

        forgotten = forget_faults(current)
        ui.info(f"stopping the {current.runtime} lab to restore its data")
        get_runtime(current, model).down(volumes=False, fresh=bool(forgotten) or current.salvaged)
    lab = LabState(
        dir=state_dir,
        runtime=runtime_name,
        instance=str(saved.get("instance") or "default"),
        ports={k: dict(v) for k, v in (saved.get("ports") or {}).items()},
        settings={
            k: v
            for k, v in (saved.get("settings") or {}).items()
            if k not in ("unavailable", "config_applied")
        },
    )
    missing = {s: p for s, p in model.default_ports().items() if s not in lab.ports}
    if missing:
        from labctl.state import allocate_ports

        lab.ports.update(allocate_ports(missing, free=True))
    lab.save()
    runtime = get_runtime(lab, model)
    parts: list[str] = [p for p in ("prometheus", "proxy", "grafana") if p in manifest.parts]
    up_started = 0.0
    if runtime.name == "docker":
        _place_docker(runtime, manifest, parts, stage)
        up_started = time.monotonic()
        runtime.up(stage)
    else:
        with _swapped_native(lab, manifest, parts):
            up_started = time.monotonic()
            runtime.up(stage)
    now = time.monotonic()
    return RestoreResult(
        manifest.directory, stage, runtime.name, parts, round(now - started, 2), round(now - up_started, 2)
    )


_NATIVE_PLACES = {"prometheus": "tsdb", "proxy": ".", "grafana": "."}


@contextlib.contextmanager
def _swapped_native(lab: LabState, manifest: Manifest, parts: list[str]) -> Iterator[None]:
    """Move each part's current data aside and copy the backup's in; put the old data back if the body fails."""
    aside = lab.dir / f"restore-previous-{int(time.time())}"
    moved: list[tuple[Path, Path]] = []
    try:
        for part in parts:
            data = lab.data_dir(part)
            targets = _native_targets(part, manifest)
            for rel in targets:
                current = data / rel
                if current.exists():
                    keep = aside / part / rel
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    current.rename(keep)
                    moved.append((keep, current))
            src = manifest.directory / part
            if part == "prometheus":
                (data / "tsdb").mkdir(parents=True, exist_ok=True)
                for block in src.iterdir():
                    shutil.copytree(block, data / "tsdb" / block.name)
            else:
                for file in src.rglob("*"):
                    if file.is_file():
                        (data / file.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(file, data / file.relative_to(src))
        yield
    except BaseException:
        get_runtime(LabState.load(lab.dir) if LabState.exists(lab.dir) else lab).down(volumes=False)
        for keep, original in reversed(moved):
            if original.is_dir():
                shutil.rmtree(original)
            elif original.exists():
                original.unlink()
            keep.rename(original)
        raise
    else:
        shutil.rmtree(aside, ignore_errors=True)


# Beside a SQLite database: its write-ahead log and index, or its rollback journal. A killed writer leaves
# them behind, and SQLite would replay a leftover log onto the restored file (the old data would win).
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _native_targets(part: str, manifest: Manifest) -> list[str]:
    """What a part replaces in the service's data dir."""
    if part == "prometheus":
        return ["tsdb"]
    src = manifest.directory / part
    database = SPOOL if part == "proxy" else "grafana.db"
    return sorted(
        {file.relative_to(src).as_posix() for file in src.rglob("*") if file.is_file()}
        | ({*PROXY_FILES} if part == "proxy" else set())
        | {database + side for side in ("", *SQLITE_SIDE_FILES)}
    )


def _place_docker(runtime: Runtime, manifest: Manifest, parts: list[str], stage: str) -> None:
    """Create the stage's containers (and volumes) without starting them, empty the data, copy the backup in."""
    docker = _docker(runtime)
    runtime.lab.stage = stage
    runtime.lab.save()
    docker.prepare_files()
    services = [p for p in parts if p in runtime.model.stage_services(stage, "docker")]
    docker._compose(lambda c: c.compose.create(services), "create the lab's containers")
    for part in services:
        inside = runtime.model.service(part).docker_data
        # Empty the volume as the image's own user would see it, then copy the backup in and give it back.
        what = {
            "prometheus": f"rm -rf {inside}/*",
            "proxy": f"rm -rf {inside}/{SPOOL}* {inside}/inspect",
            "grafana": f"rm -f {inside}/grafana.db {inside}/grafana.db-*",
        }[part]
        _docker_run_root(docker, part, what)
        src = manifest.directory / part
        for item in sorted(src.iterdir()):
            docker.copy_to(part, item, f"{inside}/{item.name}" if part != "prometheus" else f"{inside}/")
        # docker cp writes as root: hand the files to whoever owns the data dir in the image.
        _docker_run_root(docker, part, f'chown -R "$(stat -c %u:%g {inside})" {inside}')


def _docker_run_root(docker: Any, service: str, shell: str) -> None:
    docker._compose(
        lambda c: c.compose.run(
            service, ["-c", shell], entrypoint="sh", user="root", remove=True, dependencies=False, tty=False
        ),
        f"prepare {service}'s data volume",
    )
