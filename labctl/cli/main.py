"""The Typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="labctl",
    help="A classroom lab for building and debugging OpenTelemetry pipelines, layer by layer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
