"""The one polling loop: a truthy answer ends it, a timeout returns the last answer, "not yet" errors wait."""

from __future__ import annotations

import pytest

from labctl.poll import poll


def test_poll_returns_the_first_truthy_answer_or_the_last_one() -> None:
    answers = iter([0, "", "ready", "later"])
    assert poll(lambda: next(answers), timeout=5, interval=0) == "ready"
    calls = []
    assert poll(lambda: calls.append(1), timeout=0.05, interval=0.01) is None and len(calls) >= 2


def test_poll_waits_through_not_yet_errors_and_lets_others_through() -> None:
    answers = iter([ConnectionRefusedError(), ConnectionRefusedError(), 42])

    def probe() -> int:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    assert poll(probe, timeout=5, interval=0, not_yet=(OSError,)) == 42
    with pytest.raises(KeyError):
        poll(lambda: {}["missing"], timeout=5, interval=0, not_yet=(OSError,))
