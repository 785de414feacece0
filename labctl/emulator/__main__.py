"""`python -m labctl.emulator emit|env`: the same commands as `labctl emit|env`, with a lighter start-up."""

from __future__ import annotations

import sys

import typer

from labctl.emulator.command import emit_command, env_command
from labctl.errors import LabError

app = typer.Typer(
    name="labctl-emulator", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
app.command("emit")(emit_command)
app.command("env")(env_command)

if __name__ == "__main__":
    try:
        app()
    except LabError as exc:
        from labctl import ui  # imported on the error path only: start-up stays light

        ui.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
