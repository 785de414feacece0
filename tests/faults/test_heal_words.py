"""`labctl heal` says what it put back, in a student's words, for every fault there is."""

from __future__ import annotations

from labctl.faults.healed import CHANGED_BACK
from labctl.faults.registry import FAULTS


def test_every_fault_says_what_heal_put_back() -> None:
    assert set(CHANGED_BACK) == set(FAULTS), "give each fault one phrase in labctl/faults/healed.py"
    for fault, phrase in CHANGED_BACK.items():
        assert 10 < len(phrase) < 60, (fault, phrase)  # one short phrase after "healed <fault>:"
