"""`labctl emit` (the Claude Code telemetry emulator) and `labctl env` (the block for a real Claude Code)."""

from __future__ import annotations

from labctl.cli.main import app
from labctl.emulator.command import emit_command, env_command

app.command("env")(env_command)
app.command("emit")(emit_command)
