"""`labctl claude`: the pinned real Claude Code against the running lab and its model stub (offline)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from labctl import ui

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)


@cli.command()
def claude(
    claude_args: Annotated[
        list[str] | None, typer.Argument(help="Arguments for claude itself, after `--`.", show_default=False)
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", "-s", help="The scenario the model stub plays (lab/scenarios/NAME.yaml)."),
    ] = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="OTLP protocol: grpc, http/protobuf or http/json.")
    ] = "grpc",
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir", help="Where the client works (default: <state dir>/claude/work/<scenario>)."
        ),
    ] = None,
    interactive: Annotated[
        bool,
        typer.Option("--interactive", help="Start the client's own terminal UI instead of `-p <prompt>`."),
    ] = False,
    traces: Annotated[
        bool,
        typer.Option(
            "--traces",
            help="Export spans before module-3 too (from module-3 on, the `labctl env` block switches them on).",
        ),
    ] = False,
    list_scenarios: Annotated[bool, typer.Option("--list", help="List the scenarios and exit.")] = False,
) -> None:
    """Run the real Claude Code (pinned, `labctl install claude-code`) against the running lab, offline.

    The model stub answers with the scenario's scripted turns; telemetry goes to the proxy exactly as the
    `labctl env` block says. Arguments after `--` go to claude, e.g. `labctl claude -s hello-write --
    --debug-file /tmp/claude-debug.log`. HOME and the client's config live in the lab's state dir."""
    from labctl.install.claudecode import resolve
    from labctl.modelstub import client
    from labctl.state import LabState

    if list_scenarios:
        ui.table(
            ["scenario", "turns", "what it does"],
            [[s.name, len(s.turns), s.description] for s in client.scenarios().values()],
        )
        return
    if not scenario:
        raise typer.BadParameter(
            "name a scenario (`labctl claude --list` shows them)", param_hint="--scenario"
        )
    ui.json_mode(True)  # labctl's own lines go to stderr: stdout is the client's (e.g. its `-p` answer)
    lab = LabState.current()
    client.scenario(scenario)  # an unknown or broken scenario says so before anything else
    prepared = client.prepare(
        lab,
        resolve(),
        scenario,
        list(claude_args or []),
        protocol=protocol,
        workdir=workdir,
        interactive=interactive,
        traces=traces,
    )
    ui.info(
        f"claude → model stub {prepared.block['ANTHROPIC_BASE_URL']} (scenario {scenario}), "
        f"telemetry → {prepared.block['OTEL_EXPORTER_OTLP_ENDPOINT']} ({protocol})"
    )
    ui.info(f"working in {prepared.workdir}")
    code = client.run(prepared)
    if code:
        ui.warn(f"claude exited with status {code}")
    ui.info(
        "next: `labctl proxy sessions` shows the session's tokens, lines and decisions; "
        "the inspector page (`labctl url proxy`) its events"
    )
    sys.exit(code)
