"""What a student sees in a default 80-column terminal: no line wider than that, and no URL, path or
id split across lines (a split one cannot be copied). Each command is rendered at 80 columns and at
200; every token with a `/` in the narrow output must appear whole in the wide one."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.cells import cell_len

from labctl import ui
from labctl.matrix.cases import CASES_FILE, load_cases
from tests.conftest import REPO, labctl_env, run_labctl

NARROW = 80


@contextlib.contextmanager
def console_width(width: int) -> Iterator[None]:
    """labctl's console at `width` columns for the block, back to the tests' 200 after it."""
    ui.console.width = width
    try:
        yield
    finally:
        ui.console.width = 200


_BOX = re.compile(r"[│┃┏┓┗┛┣┫┡┩┠┨━─┳┻╇╈┯┷┼└┘┌┐├┤┬┴═╸╹]")
_MARKER = re.compile(r"check-[0-9a-f]{8}")
_COUNTS = re.compile(r"[\d/+\-.]+")  # "+12/-3", "0/1000": numbers that differ run to run, not locations


def slashed_tokens(text: str) -> set[str]:
    """URL- and path-like tokens (anything with a `/`), without the punctuation around them."""
    words = (w.strip("()[]{},;:'\"`.") for w in _BOX.sub(" ", text).split())
    return {w for w in words if "/" in w and not _COUNTS.fullmatch(w)}


def problems(narrow: str, wide: str) -> list[str]:
    # A line may pass the edge only when it is one path or URL longer than the terminal (kept whole).
    found = [
        f"line of {cell_len(line)} columns: {line!r}"
        for line in narrow.splitlines()
        if cell_len(line) > NARROW and " " in line.strip()
    ]
    narrow, wide = (_MARKER.sub("check-MARKER", t) for t in (narrow, wide))  # each check sends a new one
    whole = slashed_tokens(wide)
    found += [f"split or changed: {t!r}" for t in sorted(slashed_tokens(narrow) - whole)]
    return found


def test_the_detector_sees_a_folded_url() -> None:
    wide = "│ collector │ http://127.0.0.1:8889/metrics │\n"
    folded = "│ collector │ http://127.0.0.1:8889/metri │\n│           │ cs                          │\n"
    assert problems(folded, wide) == ["split or changed: 'http://127.0.0.1:8889/metri'"]
    assert problems(wide, wide) == []


def test_a_table_too_wide_for_80_columns_splits_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        [
            "upstream-unreachable",
            "http://127.0.0.1:18889/metrics",
            "lab/playbooks/upstream-unreachable.md",
            "the proxy cannot reach the Collector: connections are refused on the port it was given",
        ]
    ]
    cols = ["id", "url", "playbook", "why"]
    printed = {}
    for width in (NARROW, 200):
        with console_width(width):
            ui.table(cols, rows, title="t")
        printed[width] = capsys.readouterr().out
    assert problems(printed[NARROW], printed[200]) == []
    assert "lab/playbooks/upstream-unreachable.md" in printed[NARROW]


def test_wrap_keeps_urls_whole_and_splits_json_paths_after_a_dot() -> None:
    url = "http://127.0.0.1:9090/api/v1/query?query=count({lab_marker=%22check-0%22})"
    assert url in ui.wrap(f"14 series ({url})", 80, 30)[-1]
    path = "resourceMetrics[0].scopeMetrics[0].metrics[0](claude_code.session.count).sum.dataPoints[0]"
    lines = ui.wrap(f"first: {path}", 60, 20)
    assert all(len(line) <= 40 for line in lines) and "".join(lines).replace("first: ", "") == path


def test_a_note_keeps_its_indent_on_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    text = "(details: `labctl break ... --explain` or `labctl faults --json` — they give the answer away)"
    with console_width(NARROW):
        ui.note(text)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("  ") and len(line) <= NARROW for line in lines), lines
    assert " ".join(" ".join(lines).split()) == text


def test_a_command_to_copy_is_never_folded(capsys: pytest.CaptureFixture[str]) -> None:
    line = "labctl restore /home/a-student/.local/state/labctl/backups/default-20261205T075450Z"
    with console_width(NARROW):
        ui.command(line)
    assert capsys.readouterr().out == f"  {line}\n"


def test_a_spinner_leaves_nothing_where_there_is_no_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # In a log or a pipe rich left an empty line where the spinner had been (between `up`'s plan and its
    # table, under `$ labctl check`); a terminal shows none.
    with ui.progress() as prog:
        prog.add_task("waiting for proxy to become healthy", total=None)
    assert capsys.readouterr().err == ""


def _run(state_dir: Path, *args: str, columns: int) -> str:
    r = run_labctl(*args, state_dir=state_dir, check=False, env=labctl_env(COLUMNS=str(columns)))
    assert r.returncode in (0, 1, 11, 12, 13, 14), r.stderr
    return r.stdout + r.stderr


@pytest.mark.integration
def test_main_commands_read_whole_at_80_columns(lab_state_dir: Path) -> None:
    up = {
        NARROW: _run(lab_state_dir, "--runtime", "native", "up", "module-3", "--free-ports", columns=NARROW),
        200: _run(lab_state_dir, "up", "module-3", columns=200),
    }
    # `up` says what it starts (with host ports), keeps and stops before it does it.
    assert re.search(r"^  starts: +proxy \(\d+", up[NARROW], re.MULTILINE), up[NARROW]
    assert "  keeps:" in up[200] and "starts:" not in up[200], up[200]
    run_labctl("emit", "--from-lab", "--sessions", "1", state_dir=lab_state_dir)
    report = {"up": problems(up[NARROW], up[200])}

    def both(*args: str) -> tuple[str, str]:
        return _run(lab_state_dir, *args, columns=NARROW), _run(lab_state_dir, *args, columns=200)

    # Each check sends a marker and compares the lab's counters before and after it: the checks run one
    # at a time. The views whose text no marker changes run beside them (about 10 s of the test's 50).
    steady = [("status",), ("ports",), ("faults", "--all"), ("matrix", "list"), ("doctor",)]
    printed: dict[tuple[str, ...], tuple[str, str]] = {}
    with ThreadPoolExecutor(max_workers=3) as pool:
        beside = {args: pool.submit(both, *args) for args in steady}
        printed[("check",)] = both("check")
        printed |= {args: f.result() for args, f in beside.items()}
    printed[("proxy", "sessions")] = both("proxy", "sessions")  # lists the checks' markers too
    # A fault is broken once: heal it to render the wide run.
    narrow = _run(lab_state_dir, "break", "contract", columns=NARROW)
    healed = run_labctl("heal", "contract", state_dir=lab_state_dir).stdout
    assert "the proxy checks against the lab's own contract again" in healed, healed
    printed[("break", "contract")] = (narrow, _run(lab_state_dir, "break", "contract", columns=200))
    printed[("check", "--layer", "1")] = both("check", "--layer", "1")
    printed[("faults",)] = both("faults")
    for args, (narrow, wide) in printed.items():
        report[" ".join(args)] = problems(narrow, wide)
    narrow = printed[("matrix", "list")][0]
    words = set(narrow.split())
    report["matrix ids"] = [c.id for c in load_cases(CASES_FILE) if c.id not in words]
    assert len(narrow.splitlines()) < 3 * len(load_cases(CASES_FILE)), "matrix list is not compact"
    assert "required attribute" in printed[("check", "--layer", "1")][0], (
        "the contract fault's evidence is cut"
    )
    # A command shown as an example is copied whole: never folded at one of its spaces.
    assert "\n  curl $(labctl url proxy.admin)/api/stats\n" in printed[("ports",)][0]
    # The break's note wraps under its own indent, not back at column 0.
    note = printed[("break", "contract")][0].split("(details:")[1].split("\nnext:")[0]
    assert all(line.startswith("  ") for line in note.splitlines()[1:]), note
    assert {k: v for k, v in report.items() if v} == {}


@pytest.mark.integration
def test_a_contract_violation_reads_whole_at_80_columns(tmp_path: Path) -> None:
    """The module-1 step: a broken payload's violation path is longer than 80 columns, so it gets a
    line of its own (never split); the rule and the message fit."""
    source = (REPO / "lab" / "modules" / "module-1" / "token-usage.json").read_text()
    broken = tmp_path / "broken.json"
    broken.write_text(source.replace('"input"', '"prompt"'))
    printed = {c: _run(tmp_path, "contract", "check", str(broken), columns=c) for c in (NARROW, 200)}
    assert problems(printed[NARROW], printed[200]) == []
    path = "resourceMetrics[0].scopeMetrics[0].metrics[0](claude_code.token.usage).sum.dataPoints[0]"
    assert f"  {path}.attributes[type]\n" in printed[NARROW], printed[NARROW]
    assert "allowed: cacheCreation, cacheRead, input, output" in " ".join(printed[NARROW].split())


def test_a_table_that_fits_is_never_wider_than_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # Rich's own layout kept "not available" on one line and pushed the table past 80 columns (cropped).
    rows = [
        ["collector", "2", "running", "healthy", "http://127.0.0.1:8889/metrics"],
        [
            "grafana",
            "4",
            "not available",
            "-",
            "no grafana binary: `labctl install grafana`, or Docker (image grafana/grafana:12.2.0)",
        ],
    ]
    with console_width(NARROW):
        ui.table(["service", "layer", "state", "health", "url"], rows)
    out = capsys.readouterr().out
    assert max(cell_len(line) for line in out.splitlines()) <= NARROW, out
    assert out.splitlines()[0].endswith("┓") and "http://127.0.0.1:8889/metrics" in out
