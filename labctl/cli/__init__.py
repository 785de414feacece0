"""CLI entry point: imports every command module (each registers on `app`) and shows LabError once."""

from __future__ import annotations

import importlib
import sys

from labctl.cli.main import app
from labctl.errors import LabError

# Each module registers its commands on `app` when imported.
_COMMAND_MODULES = [
    "lab_commands",
    "proxy_commands",
    "contract_commands",
    "emit_commands",
    "matrix_commands",
    "fault_commands",
    "check_commands",
]


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"labctl.cli.{name}")
        except ModuleNotFoundError as exc:
            # Only tolerate the command module itself being absent (work in progress), never a broken import.
            if exc.name != f"labctl.cli.{name}":
                raise


_register()


def main() -> None:
    try:
        app()
    except LabError as exc:
        from rich.console import Console

        err = Console(stderr=True)
        err.print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            err.print(f"[bold]what to do:[/] {exc.hint}")
        sys.exit(exc.exit_code)
