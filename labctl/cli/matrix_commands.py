"""`labctl matrix list|run`: the configuration test matrix (lab/matrix/cases.yaml)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from labctl import ui

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)

matrix_app = typer.Typer(
    help="The configuration test matrix: exporters × protocols × endpoints × intervals × "
    "timeouts × headers, expected vs observed.",
    no_args_is_help=True,
)
cli.add_typer(matrix_app, name="matrix")

CasesOpt = Annotated[Path | None, typer.Option("--cases", help="cases file (default: lab/matrix/cases.yaml)")]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-f",
        help="id, tag (ci), receiver kind or dimension value (e.g. grpc, timeout=1000); "
        "repeat for AND, comma for OR",
    ),
]


@matrix_app.command("list")
def list_cases(
    filters: FilterOpt = None,
    cases_file: CasesOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the cases as JSON")] = False,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", help="every dimension and the full expectation, one table (for a wide terminal)"
        ),
    ] = False,
) -> None:
    """Show the matrix cases: what each tests and its expected outcome (--wide: every dimension)."""
    from labctl.matrix.cases import CASES_FILE, load_cases, select
    from labctl.matrix.report import expected_text

    cases = select(load_cases(cases_file or CASES_FILE), filters or [])
    if json_out:
        ui.print_json(
            [
                {
                    "id": c.id,
                    "title": c.title,
                    "dims": c.dims,
                    "receiver": c.receiver,
                    "expect": c.expect,
                    "focus": c.focus,
                    "tags": c.tags,
                }
                for c in cases
            ]
        )
        return
    if not wide:
        # Two lines a case: the id (never split) with its expected outcome, then what it tests.
        ui.info(
            f"[bold]{len(cases)} matrix cases[/] (`--wide`: every dimension; `matrix run -f ID` runs one)"
        )
        id_width = max((len(c.id) for c in cases), default=0)
        for c in cases:
            ui.item(c.id, f"expects {c.expect['outcome']}", id_width, indent=0)
            ui.item("", c.title, 0, indent=2)
        return
    ui.table(
        ["id", "exporter", "protocol", "endpoint", "interval", "timeout", "headers", "expected", "tags"],
        [
            [
                c.id,
                c.dims["exporter"],
                c.dims["protocol"],
                c.dims["endpoint"],
                c.dims["interval"],
                c.dims["timeout"],
                c.dims["headers"],
                expected_text(c.expect),
                ",".join(c.tags),
            ]
            for c in cases
        ],
        title=f"{len(cases)} matrix cases",
        wide=True,
    )


@matrix_app.command("run")
def run_cases(
    filters: FilterOpt = None,
    cases_file: CasesOpt = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="where report.json/.html and REPORT.md go (default: a new temporary directory)",
        ),
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", help="write the Markdown report here instead (e.g. lab/matrix/REPORT.md)"),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="cases run in parallel")] = max(
        2, (os.cpu_count() or 2) * 2
    ),
    json_out: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
) -> None:
    """Run the cases (each isolated: own receivers, ports and directory), compare observed with expected.
    Exits 1 when any case is unexpected."""
    from labctl.matrix.cases import CASES_FILE, load_cases, select
    from labctl.matrix.report import expected_text, observed_text, to_json, write_reports
    from labctl.matrix.runner import run_matrix
    from labctl.matrix.verdict import CaseResult

    cases = select(load_cases(cases_file or CASES_FILE), filters or [])
    root = report_dir or Path(tempfile.mkdtemp(prefix="labctl-matrix-"))
    work = root / "cases"
    done = [0]

    def progress(r: CaseResult) -> None:
        done[0] += 1
        mark = "[green]✓[/]" if r.ok else "[red]✗[/]"
        ui.err_console.print(
            f"{mark} [{done[0]}/{len(cases)}] {r.case.id} ({r.seconds:.1f}s)"
            + ("" if r.ok else f": {'; '.join(r.mismatches)}")
        )

    # Said before the first case ends (seconds later): what runs, and that each case is listed as it ends.
    ui.err_console.print(
        f"running {len(cases)} case(s), up to {min(jobs, len(cases))} at a time; each is listed when it ends"
    )
    t0 = time.monotonic()
    with ui.progress() as spinner:
        spinner.add_task("cases running", total=None)
        results = run_matrix(cases, work, jobs=jobs, on_done=progress)
    wall = time.monotonic() - t0
    paths = write_reports(results, wall, root, markdown)
    if json_out:
        ui.print_json(to_json(results, wall))
    else:
        ui.table(
            ["case", "protocol", "endpoint", "expected", "observed", "ok"],
            [
                [
                    r.case.id,
                    r.case.dims["protocol"],
                    r.case.dims["endpoint"],
                    expected_text(r.case.expect)[:60],
                    observed_text(r.observed)[:70],
                    "✓" if r.ok else "✗",
                ]
                for r in results
            ],
            title="configuration matrix",
        )
        bad = [r for r in results if not r.ok]
        ui.info(
            f"{len(results) - len(bad)}/{len(results)} cases as expected in {wall:.0f}s; reports: "
            + ", ".join(str(p) for p in paths.values())
        )
        for r in bad:
            ui.error(
                f"{r.case.id}: {'; '.join(r.mismatches)}", f"case files (logs, stdout, summary): {r.workdir}"
            )
    if any(not r.ok for r in results):
        raise typer.Exit(1)
