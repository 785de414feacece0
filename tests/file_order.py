"""Longest test files first, so that the two xdist workers of the full run finish together.

`--dist loadfile` hands whole files to the workers in collection order (run-all.sh turns off xdist's
own reordering, which puts the files with the most tests first — unit-test files, not the live ones).
A worker that takes a two-minute file near the end keeps the run going alone; started first, that file
overlaps everything else. tests/file_seconds.txt holds each file's seconds (setup, call and teardown)
from a full run; a file it does not list is estimated from its tests, so a new live file still goes
early. Within a file the order is kept: module-scoped labs and tests that build on each other need it.

Refresh the table from a full run's `--durations=0` output:
    python tests/file_order.py < durations.txt > tests/file_seconds.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parent / "file_seconds.txt"
# Estimates for a file missing from the table: a live test starts a lab or drives one through a fault.
LIVE_TEST_S = 20.0
OTHER_TEST_S = 0.2
_DURATION = re.compile(r"^\s*(?P<s>\d+(?:\.\d+)?)s\s+(?:setup|call|teardown)\s+(?P<file>[^\s:]+)::")


def read_table(path: Path = TABLE) -> dict[str, float]:
    """{file: seconds} from lines `seconds path` (comments and blank lines skipped)."""
    table: dict[str, float] = {}
    if not path.exists():
        return table
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) == 2:
            table[fields[1]] = float(fields[0])
    return table


def seconds_per_file(durations: Iterable[str]) -> dict[str, float]:
    """Sum the setup, call and teardown seconds of pytest's `--durations=0` lines per file."""
    total: Counter[str] = Counter()
    for line in durations:
        m = _DURATION.match(line)
        if m:
            total[m.group("file")] += float(m.group("s"))
    return dict(total)


def file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def longest_files_first(items: list[pytest.Item], table: dict[str, float]) -> list[pytest.Item]:
    """The items, file by file, the files by their seconds (table or estimate), longest first."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(file_of(item), []).append(item)

    def weight(name: str) -> float:
        if name in table:
            return table[name]
        live = sum(1 for i in by_file[name] if i.get_closest_marker("integration") is not None)
        return live * LIVE_TEST_S + (len(by_file[name]) - live) * OTHER_TEST_S

    # sorted() is stable: files of equal weight keep the collection order (the same on every worker).
    ordered = sorted(by_file, key=lambda name: -weight(name))
    return [item for name in ordered for item in by_file[name]]


def main() -> int:
    seconds = seconds_per_file(sys.stdin)
    print("# Seconds per test file in a full run (setup + call + teardown); tests/file_order.py reads it.")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{s:8.1f} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
