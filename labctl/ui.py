"""All terminal output goes through here, so every message looks the same (info, warnings, errors, tables)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


# Set by commands run with --json: stdout then carries only the JSON document, messages go to stderr.
_json_mode = False


def json_mode(on: bool = True) -> None:
    global _json_mode
    _json_mode = on


def _out() -> Console:
    return err_console if _json_mode else console


def info(msg: str) -> None:
    _out().print(msg)


def success(msg: str) -> None:
    _out().print(f"[bold green]✓[/] {msg}")


def warn(msg: str) -> None:
    # Warnings go to stderr so `--json` output on stdout stays machine-readable.
    err_console.print(f"[bold yellow]warning:[/] {msg}")


def error(msg: str, hint: str | None = None) -> None:
    err_console.print(f"[bold red]error:[/] {msg}")
    if hint:
        err_console.print(f"[bold]what to do:[/] {hint}")


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    t = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        # fold: long words (paths, URLs, commands) wrap onto the next line instead of ending in "…",
        # so a fix or a path stays complete and copyable at 80 columns.
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(t)


def print_json(obj: Any) -> None:
    # Plain print (not rich) so the output is exactly JSON, never wrapped or coloured.
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress(transient: bool = True) -> Iterator[Progress]:
    """A spinner + elapsed-time display for waits (health checks, builds). Draws on stderr."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
    ) as prog:
        yield prog
