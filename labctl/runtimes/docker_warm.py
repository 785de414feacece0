"""Warm `up`: start a stopped lab's kept containers directly when nothing they were made from changed.

`down` keeps the lab's containers, stopped. Starting them again through `docker compose up` costs
seconds that do nothing on a busy machine: compose parses every layer file, hashes each service, looks
at networks and volumes, then starts the containers one dependency level after another (6 s for
module 3 at load 8, against 3 s for the same starts by the engine). So each `up` that went through
compose records what it was made from; a later `up` whose inputs are the same and whose containers are
exactly the recorded ones starts them itself, all at once.

"What it was made from" is everything compose reads: the layer files and the override file (contents),
the two env files (ports, settings, secrets, image references), the project and its folder, the
services asked for, and the id of every image (a tag rebuilt under the same name is another image).
Compose's own per-service config hashes follow from exactly these, and its networks' definitions too,
which `docker compose config --hash` does not cover. Anything else (a fault active, a container
missing, added, recreated by another command, paused) goes through compose as before, which recreates
what changed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

RECORD_FILE = "compose.applied.json"  # in the instance's state dir; `down --volumes` removes it
STARTABLE = ("exited", "created", "running")  # what `docker start` brings up (running: nothing to do)


def record_path(lab_dir: Path) -> Path:
    return lab_dir / RECORD_FILE


def inputs_digest(
    project: str,
    project_dir: Path,
    files: Iterable[Path],
    services: Iterable[str],
    image_ids: Mapping[str, str],
) -> str:
    """One hash over everything compose would make the stage's containers from (`files`: the compose
    files, then the env files, in the order compose reads them)."""
    digest = hashlib.sha256(f"{project}\0{project_dir.resolve()}\0".encode())
    for path in files:
        digest.update(f"{path.resolve()}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing\0")
    digest.update(("\0".join(sorted(services)) + "\0").encode())
    digest.update(json.dumps(dict(sorted(image_ids.items()))).encode())
    return digest.hexdigest()


def record(lab_dir: Path, digest: str, containers: Mapping[str, str]) -> None:
    """After compose brought the stage up: its inputs' digest and its containers (service -> id)."""
    path = record_path(lab_dir)
    path.write_text(json.dumps({"digest": digest, "containers": dict(sorted(containers.items()))}) + "\n")
    path.chmod(0o600)


def forget(lab_dir: Path) -> None:
    record_path(lab_dir).unlink(missing_ok=True)


def kept_to_start(
    lab_dir: Path, digest: str, services: Iterable[str], found: Mapping[str, tuple[str, str, bool]]
) -> list[str] | None:
    """The container ids to `docker start` instead of running compose ([] when all of them run
    already), or None when compose must run: no record, other inputs, or the project's containers
    (`found`: service -> (id, status, paused)) are not exactly the recorded ones in a startable state."""
    try:
        doc = json.loads(record_path(lab_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("digest") != digest:
        return None
    recorded = doc.get("containers")
    if not isinstance(recorded, dict) or set(recorded) != set(services) or set(found) != set(recorded):
        return None
    to_start = []
    for service, cid in recorded.items():
        fid, status, paused = found[service]
        if fid != cid or paused or status not in STARTABLE:
            return None
        if status != "running":
            to_start.append(fid)
    return to_start


def start_all(call: list[str], ids: list[str]) -> str | None:
    """`docker start` every container at once, in the given order (one CLI each: the engine starts
    them side by side). None when all started, else the engine's first complaint."""
    procs = [
        subprocess.Popen([*call, "start", cid], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for cid in ids
    ]
    problems = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            err = "docker start did not finish within 120 s"
        if proc.returncode != 0:
            problems.append(err.strip() or f"docker start exited {proc.returncode}")
    return problems[0] if problems else None
