"""`labctl exercise ...`: build-it exercises; the student edits a file, labctl says pass or fail and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labctl.errors import LabError

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)

exercise_app = typer.Typer(
    help="Build-it exercises: start one, edit its file, check it (pass/fail with a hint).",
    no_args_is_help=True,
)
cli.add_typer(exercise_app, name="exercise")

NameArg = Annotated[str, typer.Argument(help="The exercise (labctl exercise list).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@exercise_app.command("list")
def list_exercises(as_json: JsonOpt = False) -> None:
    """Every exercise: its module, its file and what to build."""
    from labctl import ui
    from labctl.exercises import EXERCISES

    rows = [(e.name, e.module, e.filename, e.task) for e in EXERCISES]
    if as_json:
        ui.print_json([dict(zip(("name", "module", "file", "task"), r, strict=True)) for r in rows])
        return
    ui.table(("exercise", "module", "file", "task"), rows)


@exercise_app.command("start")
def start(
    name: NameArg,
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the file.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file if it exists.")] = False,
) -> None:
    """Write the exercise's starting file, to edit and then check."""
    from labctl import ui
    from labctl.exercises import find_exercise

    exercise = find_exercise(name)
    target = directory / exercise.filename
    if target.exists() and not force:
        raise LabError(
            f"{target} exists (your work so far?)",
            f"check it: labctl exercise check {name} — or start again with --force",
        )
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(exercise.starting_text(), encoding="utf-8")
    ui.success(f"wrote {target}")
    for line in ui.wrap(f"to do: {exercise.task}", ui.width(), 2):
        ui.info("  " + line)
    ui.info(f"  when done: labctl exercise check {name}" + ("" if directory == Path(".") else f" {target}"))


@exercise_app.command("check")
def check(
    name: NameArg,
    file: Annotated[
        Path | None, typer.Argument(help="Your file (default: the exercise's file in this directory).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check your file: one line per requirement, a hint for each that fails. Exit 1 when any fails."""
    from rich.markup import escape

    from labctl import ui
    from labctl.exercises import find_exercise

    exercise = find_exercise(name)
    path = file or Path(exercise.filename)
    if not path.is_file():
        raise LabError(f"{path} does not exist", f"write it first: labctl exercise start {name}")
    findings = exercise.verify(path)
    passed = all(f.ok for f in findings)
    from labctl.exercises.progress import record

    record(name, passed, sum(not f.ok for f in findings))  # for the instructor's `labctl class show`
    if as_json:
        ui.print_json(
            {
                "exercise": name,
                "file": str(path),
                "passed": passed,
                "findings": [{"ok": f.ok, "what": f.what, "hint": f.hint} for f in findings],
            }
        )
    else:
        for f in findings:
            mark = "[green]✓[/]" if f.ok else "[red]✗[/]"
            for i, line in enumerate(ui.wrap(f.what, ui.width(), 2)):
                ui.console.print((f"{mark} " if i == 0 else "  ") + escape(line), soft_wrap=True)
            if not f.ok and f.hint:
                for line in ui.wrap(f"hint: {f.hint}", ui.width(), 4):
                    ui.console.print("    " + escape(line), soft_wrap=True)
        failed = sum(not f.ok for f in findings)
        if passed:
            ui.success(f"{name}: all {len(findings)} checks pass")
        else:
            ui.error(f"{name}: {failed} of {len(findings)} checks fail", "fix them and check again")
    if not passed:
        raise typer.Exit(1)
