"""Running the lab's real tools (otelcol validate, promtool) on a student's file, with a short verdict."""

from __future__ import annotations

import subprocess
from pathlib import Path

from labctl.errors import LabError
from labctl.exercises.registry import Finding


def run_tool(name: str, args: list[str], what: str, cwd: Path | None = None) -> tuple[Finding, str]:
    """Run a lab binary; a Finding that says whether it accepted, and its whole output."""
    from labctl.install import resolve_binary

    try:
        binary = resolve_binary(name)
    except LabError as exc:
        return Finding(False, f"{what}: {name} is not installed", exc.hint or exc.message), ""
    proc = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0:
        return Finding(True, what), output
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
    return Finding(False, f"{what}: {last.strip()}", f"read {name}'s message above"), output
