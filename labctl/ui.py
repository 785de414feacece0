"""All terminal output goes through here, so every message looks the same (info, warnings, errors, tables)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from labctl import invocation

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def json_mode(on: bool = True) -> None:
    """For commands run with --json: stdout then carries only the JSON document, messages go to stderr."""
    invocation.update(json_output=on)


def _out() -> Console:
    return err_console if invocation.current().json_output else console


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


def plain(cell: Any) -> str:
    """A cell as the reader sees it (markup such as `[green]ok[/]` removed)."""
    text = "" if cell is None else str(cell)
    try:
        return Text.from_markup(text).plain
    except MarkupError:
        return text


def _unbreakable(token: str) -> bool:
    # URLs, paths and ids are copied by students: they are never split across lines.
    return "/" in token or "://" in token or bool(re.fullmatch(r"[\w.-]*[-_][\w.-]*", token))


def wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """Wrap at spaces. A word longer than the line is split only when it is not a URL, path or id, and
    then after a `.`, `,` or `]` where it can be (a JSON path or a JSON document stays readable)."""
    room = max(width - indent, 20)
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line = ""
        for word in para.split():
            pieces = [word]
            if len(word) > room and not _unbreakable(word):
                pieces = [p for p in re.split(r"(?<=[.,\]])", word) if p]
                pieces = [p[i : i + room] for p in pieces for i in range(0, len(p), room)]
            for n, piece in enumerate(pieces):
                joined = line + (" " if line and n == 0 else "") + piece
                if line and len(joined) > room:
                    lines.append(line)
                    line = piece
                else:
                    line = joined
        lines.append(line)
    return lines


def width() -> int:
    return _out().width


def item(label: str, text: str, label_width: int, indent: int = 2, out: Console | None = None) -> None:
    """One labelled entry: `label  text`, the text wrapped with a hanging indent under itself."""
    dest = out or _out()
    pad = indent + label_width + 2
    lines = wrap(text, dest.width, pad)
    head = " " * indent + label + " " * max(label_width - cell_len(plain(label)) + 2, 1)
    for i, line in enumerate(lines):
        # A URL longer than the room left moves left rather than past the edge (it is never split).
        prefix = head if i == 0 else " " * min(pad, max(dest.width - len(line), 0))
        # Only the label may carry markup; the text is printed as it is (it may hold brackets).
        dest.print(prefix + escape(line), soft_wrap=True)


def note(text: str, indent: int = 2, out: Console | None = None) -> None:
    """An indented note: wrapped so that every line keeps the indent (rich would fold it to column 0)."""
    dest = out or _out()
    for line in wrap(text, dest.width, indent):
        dest.print(" " * indent + escape(line), soft_wrap=True)


def command(line: str) -> None:
    """A command to copy, on a line of its own and never folded: a newline rich put inside it would cut
    it in two when pasted (a terminal wraps an over-long line without one)."""
    _out().print("  " + escape(line), soft_wrap=True)


def _fit(columns: Sequence[str], cells: list[list[str]], mins: list[int], room: int) -> list[int]:
    """Column widths that fit `room`: each column's natural width, the widest shrunk first, never below
    its longest word (rich's own layout can leave a table wider than the terminal, which then crops)."""
    widths = [
        max([cell_len(col)] + [cell_len(line) for r in cells for line in plain(r[i]).splitlines()])
        for i, col in enumerate(columns)
    ]
    while sum(widths) > room:
        slack = [w - m for w, m in zip(widths, mins, strict=True)]
        i = max(range(len(widths)), key=lambda k: widths[k] if slack[k] > 0 else -1)
        if slack[i] <= 0:
            break
        widths[i] -= 1
    return widths


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    *,
    wide: bool = False,
    out: Console | None = None,
) -> None:
    """A table when it fits the terminal without splitting a word; otherwise one block per row.

    A table squeezed below its words' width makes rich fold cells mid-word (`http://…/metri` + `cs`),
    which a student cannot copy. So each column is at least as wide as its longest word; when that
    does not fit, every row becomes a block: the first cell, then `column: value` lines below it.
    `out`: another console (e.g. stderr where console exporters own stdout); default stdout.
    """
    dest = out or console
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    if not wide:  # a column with nothing in it only costs width
        keep = [i for i in range(len(columns)) if i == 0 or any(plain(r[i]).strip() for r in cells)]
        columns, cells = [columns[i] for i in keep], [[r[i] for i in keep] for r in cells]
    mins = [
        max(
            [cell_len(w) for w in col.split()]
            + [cell_len(w) for r in cells for w in plain(r[i]).split()]
            + [1]
        )
        for i, col in enumerate(columns)
    ]
    boxed = 3 * len(columns) + 1  # "│ " + " │ " between cells + " │"
    bare = 2 * (len(columns) - 1)  # two spaces between cells, no borders
    if title:
        # Above the table, not as its title: rich folds a title to the table's width, mid-path.
        dest.print(f"[bold]{escape(title)}[/]", soft_wrap=wide)
    if wide or sum(mins) + boxed <= dest.width or sum(mins) + bare <= dest.width:
        t = Table(show_lines=False, header_style="bold")
        if not wide and sum(mins) + boxed > dest.width:
            t = Table(header_style="bold underline", box=None, pad_edge=False)
            boxed = bare
        widths = _fit(columns, cells, mins, dest.width - boxed)
        for col, fixed in zip(columns, widths, strict=True):
            t.add_column(col, overflow="fold", width=None if wide else fixed)
        for row in cells:
            t.add_row(*row)
        dest.print(t, crop=not wide, soft_wrap=wide)
        return
    label_width = max(cell_len(c) for c in columns[1:]) + 1 if len(columns) > 1 else 0
    for row in cells:
        dest.print(f"[bold]{row[0]}[/]" if row[0] else "")
        for col, cell in zip(columns[1:], row[1:], strict=True):
            if plain(cell).strip():
                item(f"{col}:", plain(cell), label_width, out=dest)


def print_json(obj: Any) -> None:
    # Plain print (not rich) so the output is exactly JSON, never wrapped or coloured.
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress(transient: bool = True) -> Iterator[Progress]:
    """A spinner + elapsed-time display for waits (health checks, builds). Draws on stderr, and only on a
    terminal: elsewhere (a log, a pipe) rich would leave an empty line where the spinner was."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    ) as prog:
        yield prog
