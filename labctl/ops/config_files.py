"""Which version of its configuration files each service runs.

lab/lab.yaml lists a service's files under `config:` (files or folders). When a service starts or
reloads, labctl records a digest of every file; `labctl status` and `labctl up` compare it with the files
on disk and name the ones edited since, so nobody wonders why an edit "did nothing".
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from labctl.model import LabModel
from labctl.state import LabState

_KEY = "config_applied"  # lab.json settings: service -> {repo-relative path: digest}


def digest(model: LabModel, service: str) -> dict[str, str]:
    """{repo-relative path: sha256 prefix} of every file the service declares (folders: all files in them)."""
    out: dict[str, str] = {}
    for entry in model.service(service).config:
        path = model.root / entry
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            rel = file.relative_to(model.root).as_posix()
            try:
                out[rel] = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
            except OSError:
                out[rel] = "missing"
    return out


def record_applied(lab: LabState, model: LabModel, services: list[str] | tuple[str, ...]) -> None:
    """The services now run their files as they are on disk (after a start or a successful reload)."""
    applied = lab.settings.setdefault(_KEY, {})
    for service in services:
        if model.service(service).config:
            applied[service] = digest(model, service)
    lab.save()


def edited_since_applied(lab: LabState, model: LabModel, service: str) -> list[str]:
    """Files edited, added or removed since the service last (re)loaded them; [] when unknown or equal."""
    before = (lab.settings.get(_KEY) or {}).get(service)
    if not before or not model.service(service).config:
        return []
    now = digest(model, service)
    return sorted(p for p in set(before) | set(now) if before.get(p) != now.get(p))


def describe(files: list[str]) -> str:
    """At most three file names, for a status cell."""
    names = [Path(f).name for f in files]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
