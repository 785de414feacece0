"""`labctl check`: send a marker through the lab and show, layer by layer, where it got and why not."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from labctl import ui
from labctl.checks.layer3 import resolve_note
from labctl.checks.result import CheckResult, exit_code, first_failing_layer
from labctl.checks.runner import run_checks
from labctl.errors import LabError
from labctl.model import load_model
from labctl.state import LabState

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)


@cli.command(
    help="Send a marker through the running lab and follow it hop by hop. Exit code: 0 when green, "
    "10+N when layer N is the first that fails."
)
def check(
    layer: Annotated[int | None, typer.Option("--layer", help="Only report this layer (1-4).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    model = load_model()
    if layer is not None and layer not in model.layers:
        raise LabError(f"--layer {layer} does not exist", f"use {model.layers_hint()}")
    lab = LabState.current()
    started = time.monotonic()
    with ui.progress() as prog:
        task = prog.add_task("checking", total=None)
        cx, results = run_checks(
            lab, (layer,) if layer else (), model, progress=lambda msg: prog.update(task, description=msg)
        )
    seconds = round(time.monotonic() - started, 1)
    failing = first_failing_layer(results)
    secret = set(lab.hidden_faults())
    if secret:  # blind: evidence stays, the answer goes (labctl/faults/blind.py)
        from labctl.faults.blind import conceal

        results = conceal(results)
    visible = sorted(set(lab.faults) - secret)
    if json_out:
        ui.print_json(
            {
                "marker": cx.marker.value if cx.marker else None,
                "seconds": seconds,
                "first_failing_layer": failing,
                "active_faults": visible,
                "blind": bool(secret),
                "results": [r.to_dict() for r in results],
            }
        )
    else:
        _print_results(results)
        marker = cx.marker.value if cx.marker else "-"
        if failing is None:
            ui.success(f"all checked layers are green (marker {marker}, {seconds}s)")
            seen: set[str] = set()
            for alert in cx.notes.get("firing", []):
                if alert["labels"]["alertname"] not in seen:
                    seen.add(alert["labels"]["alertname"])
                    ui.warn(f"still firing: {resolve_note(alert)}")
        else:
            first = next(r for r in results if r.layer == failing and not r.ok and not r.skipped)
            if visible:  # before the error: its "what to do" is the last line a student reads
                ui.info(f"active faults: {', '.join(visible)} (`labctl faults`)")
            ui.error(
                f"layer {failing} fails first: {first.cause}",
                f"read lab/playbooks/{first.playbook}.md" if first.playbook else first.hint,
            )
            if secret:
                ui.info(
                    "blind challenge: record your diagnosis with `labctl diagnose` (`labctl reveal` grades it)"
                )
    raise typer.Exit(exit_code(results))


_VERDICT = {
    "ok": "[green]ok[/]",
    "warn": "[bold yellow]warn[/]",
    "FAIL": "[bold red]FAIL[/]",
    "skip": "[dim]skip[/]",
}


def _print_results(results: list[CheckResult]) -> None:
    """One line per check, its evidence wrapped under it; cause, next step and playbook only where it
    did not pass. Not a table: evidence holds URLs and paths that a squeezed table cell would split."""
    name_width = max(len(r.name) for r in results) + 5  # "FAIL " + name
    for n in sorted({r.layer for r in results}):
        ui.info(f"[bold]{load_model().layers[n].title}[/]")
        for r in (r for r in results if r.layer == n):
            label = f"{_VERDICT[r.verdict]}{' ' * (5 - len(r.verdict))}{r.name}"
            ui.item(label, "\n".join(r.evidence) or "-", name_width)
            if r.warning or not r.ok:
                for text in (
                    r.cause,
                    f"→ {r.hint}" if r.hint else None,
                    f"playbook: lab/playbooks/{r.playbook}.md" if r.playbook else None,
                ):
                    if text:
                        ui.item("", text, 5, indent=2)
