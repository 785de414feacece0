"""The full run hands test files to the xdist workers longest first (tests/file_order.py)."""

from __future__ import annotations

from dataclasses import dataclass

from file_order import longest_files_first, seconds_per_file


@dataclass
class _Item:  # what the ordering reads of a pytest item
    nodeid: str
    live: bool = False

    def get_closest_marker(self, name: str) -> object | None:
        return True if name == "integration" and self.live else None


def test_durations_are_summed_per_file() -> None:
    lines = [
        "============ slowest durations ============",
        "133.90s call     tests/docs/test_docs_outputs.py::test_outputs_in_the_docs_match_a_real_run",
        "11.23s setup    tests/faults/test_blind_live.py::test_every_fault_hidden_then_graded[auth-wrong]",
        "2.50s teardown tests/docs/test_docs_outputs.py::test_outputs_in_the_docs_match_a_real_run",
        "0.50s call     tests/faults/test_blind_live.py::test_class_break_show_and_reveal",
    ]
    assert seconds_per_file(lines) == {
        "tests/docs/test_docs_outputs.py": 136.4,
        "tests/faults/test_blind_live.py": 11.73,
    }


def test_longest_files_go_first_and_each_file_keeps_its_order() -> None:
    items = [
        _Item("tests/a.py::one"),
        _Item("tests/a.py::two"),
        _Item("tests/b.py::slow", live=True),
        _Item("tests/c.py::x"),
        _Item("tests/new_live.py::starts_a_lab", live=True),
        _Item("tests/b.py::after"),
    ]
    table = {"tests/a.py": 5.0, "tests/b.py": 300.0, "tests/c.py": 40.0}
    order = [i.nodeid for i in longest_files_first(items, table)]  # type: ignore[arg-type]
    assert order == [
        "tests/b.py::slow",
        "tests/b.py::after",
        "tests/c.py::x",
        "tests/new_live.py::starts_a_lab",  # not in the table: one live test is estimated at 20 s
        "tests/a.py::one",
        "tests/a.py::two",
    ]
