"""CLI entry point: imports every command module (each registers on `app`) and shows LabError once."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from labctl.cli.main import app
from labctl.errors import LabError

# Each module registers its commands on `app` when imported.
_COMMAND_MODULES = [
    "lab_commands",
    "proxy_commands",
    "proxy_inspect_commands",
    "contract_commands",
    "emit_commands",
    "matrix_commands",
    "fault_commands",
    "check_commands",
    "claude_commands",
    "ops_commands",
    "image_commands",
    "blind_commands",
    "exercise_commands",
]


# Lifecycle commands are run most and must start fast (`labctl down` ≤ 3 s): when the labctl program
# itself runs one of them, only their module is imported. Help and every other command import all.
_LAB_COMMANDS = {"up", "down", "status", "ports", "url", "logs", "doctor", "install"}
# Operating a running lab is timed too (a reload takes effect within seconds; backup and restore).
_OPS_COMMANDS = {"reload", "backup", "restore"}
_GLOBAL_OPTIONS_WITH_VALUE = {"--runtime", "--state-dir", "--instance"}


def _wanted(argv: list[str]) -> list[str]:
    program = Path(argv[0]).name if argv else ""
    if program not in ("labctl", "__main__.py") or "--help" in argv:
        return _COMMAND_MODULES
    args = iter(argv[1:])
    for arg in args:
        if arg in _GLOBAL_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            if arg in _OPS_COMMANDS:
                return ["ops_commands"]
            return ["lab_commands"] if arg in _LAB_COMMANDS else _COMMAND_MODULES
    return _COMMAND_MODULES


def _register(modules: list[str] | None = None) -> None:
    for name in modules or _COMMAND_MODULES:
        try:
            importlib.import_module(f"labctl.cli.{name}")
        except ModuleNotFoundError as exc:
            # Only tolerate the command module itself being absent (work in progress), never a broken import.
            if exc.name != f"labctl.cli.{name}":
                raise


_register(_wanted(sys.argv))


def main() -> None:
    try:
        app()
    except LabError as exc:
        from labctl import ui  # imported on the error path only: start-up stays light

        ui.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
