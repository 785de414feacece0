"""The Collector's local configuration slot: two files it always loads after base.yaml.

Both runtimes start the Collector as `--config base.yaml --config <slot>/local-1.yaml --config
<slot>/local-2.yaml` (natively from the instance's state dir, on Docker the same folder mounted at
/etc/otelcol-lab). They hold `{}` on a healthy lab. The overlays the runtime's overrides list for the
Collector (a fault's, a test's) are written into them, and a SIGHUP makes the running Collector read
them again: its pipelines are rebuilt in the same process in a fraction of a second, where a restart
(or, on Docker, recreating the container for a new command) took seconds. The command line, the
mounts and the file names are the same whatever the slot holds, so none of them names a fault.

Why two files: the Collector merges its config files in order, maps key by key, and a later value
that is not a map (null included) replaces the earlier one. An overlay can take a key away only by
setting it to null in one file and writing it again in a later one (no-logs-pipeline does). Folding
any list of overlays into one file would lose that, so local-1.yaml carries every null of the list
and local-2.yaml the list merged in order: base + local-1 + local-2 is exactly base + each overlay.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

SLOT_FILES = ("local-1.yaml", "local-2.yaml")
CONTAINER_DIR = "/etc/otelcol-lab"  # where compose/module-2.yml mounts the slot folder


def slot_dir(lab_dir: Path) -> Path:
    return lab_dir / "config" / "collector"


def slot_paths(lab_dir: Path) -> list[Path]:
    return [slot_dir(lab_dir) / name for name in SLOT_FILES]


def config_args(paths: list[str]) -> list[str]:
    return [arg for path in paths for arg in ("--config", path)]


def fold(overlays: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the nulls, the merge) of overlays given in load order; see the module's docstring."""
    nulls: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    for doc in overlays:
        if isinstance(doc, dict):
            _collect_nulls(doc, nulls)
            _merge(merged, doc)
    return nulls, merged


def _merge(into: dict[str, Any], doc: dict[str, Any]) -> None:
    for key, value in doc.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = _copy(value)


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def _collect_nulls(doc: dict[str, Any], nulls: dict[str, Any]) -> None:
    for key, value in doc.items():
        if value is None:
            nulls[key] = None  # the whole key goes: nothing below it needs its own null
        elif isinstance(value, dict) and nulls.get(key, {}) is not None:
            _collect_nulls(value, nulls.setdefault(key, {}))
    for key in [k for k, v in nulls.items() if v == {}]:
        del nulls[key]


def render(configs: list[str], env: dict[str, str] | None = None) -> tuple[str, str]:
    """The two files' text for these overlay files. A `${env:NAME}` whose NAME the overrides set is
    written in as its value (the Collector's own env does not change, so no restart is needed)."""
    docs = []
    for path in configs:
        raw = Path(path).read_text()
        for name, value in (env or {}).items():
            raw = raw.replace(f"${{env:{name}}}", value)
        docs.append(yaml.safe_load(raw))
    nulls, merged = fold(docs)
    return _dump(nulls), _dump(merged)


def _dump(doc: dict[str, Any]) -> str:
    # Data only: an overlay's comments explain (and name) the fault; the slot must not.
    return yaml.safe_dump(doc, sort_keys=False) if doc else "{}\n"


def write(lab_dir: Path, configs: list[str], env: dict[str, str] | None = None) -> bool:
    """Write the slot for these overlays; True when a file's content changed."""
    folder = slot_dir(lab_dir)
    folder.mkdir(parents=True, exist_ok=True)
    changed = False
    for path, text in zip(slot_paths(lab_dir), render(configs, env), strict=True):
        if path.exists() and path.read_text() == text:
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o644)  # the Collector's container runs as its own user
        os.replace(tmp, path)  # whole files only: a reload never reads half of one
        changed = True
    return changed


def inlined_env(configs: list[str], env: dict[str, str]) -> set[str]:
    """The override env names the overlays read (`${env:NAME}`): the slot carries their values."""
    text = "\n".join(Path(p).read_text() for p in configs if Path(p).exists())
    used = set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", text))
    return used & set(env)


def process_env(override: dict[str, Any]) -> dict[str, str]:
    """The override env the Collector's process gets: what the slot does not already carry."""
    env = dict(override.get("env") or {})
    for name in inlined_env(list(override.get("extra_configs") or []), env):
        env.pop(name)
    return env


def write_for(lab_dir: Path, override: dict[str, Any]) -> bool:
    """The slot for one service override entry (lab.overrides["collector"], or {} when there is none)."""
    return write(lab_dir, list(override.get("extra_configs") or []), dict(override.get("env") or {}))
