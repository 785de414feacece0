"""The Typer application with the global options; labctl.cli mounts the command modules' commands on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labctl import state

app = typer.Typer(
    name="labctl",
    help="A classroom lab for building and debugging OpenTelemetry pipelines, layer by layer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            help="docker, native or auto (Docker when an engine answers, else native). Env: LABCTL_RUNTIME.",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Lab state directory. Env: LABCTL_STATE_DIR."),
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance", help="Name of this lab instance (default: default). Env: LABCTL_INSTANCE."
        ),
    ] = None,
) -> None:
    """Global options are stored once; every command reads them through labctl.state."""
    if runtime is not None and runtime not in ("docker", "native", "auto"):
        raise typer.BadParameter(f"{runtime!r} is not one of docker, native, auto", param_hint="--runtime")
    state.configure(state_dir=state_dir, instance=instance, runtime=runtime)
