"""CLI entry point: `main` builds the application for this invocation's argv and shows LabError once.

Commands are registered explicitly by `application`: it imports the command modules an argv needs
(the table `COMMANDS`) and mounts each module's own Typer (`cli`: its commands and groups) on `app`.
Importing a command module registers nothing anywhere; nothing is registered, and no argument read,
at import of this package either.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import typer

from labctl.cli.main import app
from labctl.errors import LabError

# Each module defines its commands and groups on its own `cli`, which `application` mounts.
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


# Which module defines each top-level command or group. `labctl <command>` imports only its own
# module: start-up is paid by every command a student types (and by the test suite hundreds of times),
# and the modules behind `emit`, `proxy` or `matrix` (OpenTelemetry SDK, gRPC) are the heaviest.
# tests/foundation/test_cli_registry.py holds this table to what the modules register.
COMMANDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("up", "down", "status", "ports", "url", "logs", "doctor", "install"), ("lab_commands",)),
    **dict.fromkeys(("env", "emit"), ("emit_commands",)),
    **dict.fromkeys(("break", "heal", "faults"), ("fault_commands",)),
    "check": ("check_commands",),
    "claude": ("claude_commands",),
    **dict.fromkeys(("reload", "backup", "restore"), ("ops_commands",)),
    **dict.fromkeys(("diagnose", "reveal", "class"), ("blind_commands",)),
    "proxy": ("proxy_commands", "proxy_inspect_commands"),
    "contract": ("contract_commands",),
    "matrix": ("matrix_commands",),
    "images": ("image_commands",),
    "exercise": ("exercise_commands",),
}
_GLOBAL_OPTIONS_WITH_VALUE = {"--runtime", "--state-dir", "--instance"}


def _wanted(argv: Sequence[str]) -> list[str]:
    program = Path(argv[0]).name if argv else ""
    if program not in ("labctl", "__main__.py") or "--help" in argv:
        return _COMMAND_MODULES
    args = iter(argv[1:])
    for arg in args:
        if arg in _GLOBAL_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            # An unknown command gets every module, so that typer's own error lists them all.
            return list(COMMANDS.get(arg, _COMMAND_MODULES))
    return _COMMAND_MODULES


def application(argv: Sequence[str] | None = None) -> typer.Typer:
    """The labctl application with the commands `argv` needs registered (every command without argv)."""
    for name in _COMMAND_MODULES if argv is None else _wanted(argv):
        if name in _mounted:
            continue
        try:
            module = importlib.import_module(f"labctl.cli.{name}")
        except ModuleNotFoundError as exc:
            # Only tolerate the command module itself being absent (work in progress), never a broken import.
            if exc.name != f"labctl.cli.{name}":
                raise
            continue
        _mount(module.cli)
        _mounted.add(name)
    return app


_mounted: set[str] = set()  # the command modules whose commands `app` has


def _mount(part: typer.Typer) -> None:
    """A command module's commands and groups (its `cli`) onto `app`. A group two modules fill (`proxy`)
    becomes one group with the commands of both."""
    app.registered_commands.extend(part.registered_commands)
    groups = {g.name: g for g in app.registered_groups}
    for group in part.registered_groups:
        same = groups.get(group.name)
        if same is None:
            app.registered_groups.append(group)
        else:
            assert same.typer_instance is not None and group.typer_instance is not None
            same.typer_instance.registered_commands.extend(group.typer_instance.registered_commands)


def main() -> None:
    try:
        application(sys.argv)()
    except LabError as exc:
        from labctl import ui  # imported on the error path only: start-up stays light

        ui.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
