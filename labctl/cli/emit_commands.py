"""`labctl emit` (the Claude Code telemetry emulator) and `labctl env` (the block for a real Claude Code)."""

from __future__ import annotations

import typer

from labctl.emulator.command import emit_command, env_command

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)

cli.command("env")(env_command)
cli.command("emit")(emit_command)
