"""What a student reads in the guides' console transcripts fits a default 80-column terminal.

A transcript line may be wider only when it is one unsplittable token (a URL, a path, an id, a JSON
path): splitting it would break a copy and paste. Anything else wider is a defect of the tool's output
or of the command the guide shows (wrap it with `\\` continuations, or pipe raw machine output
through something that prints it readably).
"""

from __future__ import annotations

import docsmd
from generate_outputs import WIDTH

# (document, the line's start): lines wider than WIDTH that are not one token but cannot be narrowed.
# Keep each with its reason; an entry that matches nothing fails the test (so none outlives its line).
ALLOWED: dict[tuple[str, str], str] = {}


def _console_lines() -> list[tuple[str, int, str]]:
    found = []
    for path in docsmd.doc_files():
        rel = str(path.relative_to(docsmd.REPO))
        blocks, _ = docsmd.split_blocks(path.read_text(encoding="utf-8"), path)
        for block in blocks:
            if block.lang in ("console", "shell-session"):
                for offset, line in enumerate(block.text.splitlines()):
                    found.append((rel, block.line + 1 + offset, line))
    return found


def _command_lines() -> list[tuple[str, int, str]]:
    # The command blocks a student copies from (the README, the guides, the playbooks a check links):
    # a line over 80 columns wraps in their terminal, where a continuation is hard to read.
    found = []
    for path in docsmd.doc_files():
        rel = str(path.relative_to(docsmd.REPO))
        blocks, _ = docsmd.split_blocks(path.read_text(encoding="utf-8"), path)
        for block in blocks:
            if block.lang in ("bash", "sh", "shell"):
                for offset, line in enumerate(block.text.splitlines()):
                    found.append((rel, block.line + 1 + offset, line))
    return found


def _one_token(line: str) -> bool:
    # A JSON document on one line has no spaces but is raw machine output, not one token.
    return len(line.split()) == 1 and not line.lstrip().startswith(("{", "["))


def too_wide(lines: list[tuple[str, int, str]], allowed: dict[tuple[str, str], str]) -> list[str]:
    """The lines over WIDTH characters (not bytes) that are neither one token nor allowed."""
    return [
        f"{rel}:{no}: {len(line)} columns: {line[:100]}"
        for rel, no, line in lines
        if len(line) > WIDTH
        and not _one_token(line)
        and not any(rel == doc and line.lstrip().startswith(start) for doc, start in allowed)
    ]


def test_console_transcripts_fit_80_columns():
    lines = _console_lines()
    assert len(lines) > 500, "the guides' console blocks were not found"
    wide = too_wide(lines, ALLOWED)
    assert not wide, "console lines over 80 columns (wrap them or say why not):\n" + "\n".join(wide)
    for doc, start in ALLOWED:
        assert any(rel == doc and line.lstrip().startswith(start) for rel, _, line in lines), (
            f"allowance {doc}: {start!r} matches no line any more: remove it"
        )


def test_the_docs_command_blocks_fit_80_columns():
    lines = _command_lines()
    assert len(lines) > 300, "the docs' command blocks were not found"
    wide = too_wide(lines, {})
    assert not wide, "command lines over 80 columns (continue them with `\\`):\n" + "\n".join(wide)


def test_the_width_check_finds_wide_lines_and_spares_tokens_and_allowances():
    json_path = "   resourceMetrics[0].scopeMetrics[0].metrics[0](claude_code.token.usage).sum.dataPoints[0]"
    prose = "# representative output: a 3 s run (yours runs 20 s: more actions, exports and items)"
    lines = [
        ("a.md", 1, "│" * 80),  # 80 characters, 240 bytes: fits
        ("a.md", 2, json_path),
        ("a.md", 3, prose),
        (
            "a.md",
            4,
            '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"type":"in"}}]}}',
        ),
        ("b.md", 4, prose),
    ]
    assert [w.split(":")[:2] for w in too_wide(lines, {})] == [["a.md", "3"], ["a.md", "4"], ["b.md", "4"]]
    assert [w.split(":")[:2] for w in too_wide(lines, {("a.md", "# representative"): "why"})] == [
        ["a.md", "4"],
        ["b.md", "4"],
    ]


def test_the_generator_writes_commands_and_notes_within_80_columns():
    # The transcripts' `$ ` lines and `# representative output:` notes come from the scenario: a step
    # whose command or note is too wide fails here before any lab runs.
    from generate_outputs import SCENARIO, _note

    for step in SCENARIO:
        if step.section:
            shown = ("$ " + step.shown).splitlines() + _note(step.sample).splitlines()
            wide = [line for line in shown if len(line) > WIDTH and not _one_token(line)]
            assert not wide, f"{step.section}: wrap these at {WIDTH} columns: {wide}"
