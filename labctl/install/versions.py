"""Pinned versions, from compose/versions.env through the lab model (the one place versions live)."""

from __future__ import annotations

from pathlib import Path

from labctl.errors import LabError
from labctl.model import load_model


def load_versions(root: Path) -> dict[str, str]:
    return dict(load_model(root).versions)


def require(versions: dict[str, str], key: str) -> str:
    value = versions.get(key)
    if not value:
        raise LabError(
            f"compose/versions.env does not pin {key}",
            f"add a line {key}=<version> to compose/versions.env",
        )
    return value
