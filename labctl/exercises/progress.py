"""What `labctl exercise check` leaves in the lab's state, for the instructor's `labctl class show`.

An exercise passed once stays passed (a later edit that breaks it again is the student's own
experiment); the last result and its time are kept beside it. No lab, no record: the exercises
need no running lab, and a check outside one changes nothing."""

from __future__ import annotations

import time
from typing import Any

from labctl.state import LabState

KEY = "exercises"


def record(name: str, passed: bool, failed_checks: int) -> bool:
    """Note one check in this invocation's lab state; False when there is no lab to note it in."""
    if not LabState.exists():
        return False
    lab = LabState.load()
    entries: dict[str, Any] = dict(lab.settings.get(KEY) or {})
    previous = entries.get(name) or {}
    now = time.time()
    entries[name] = {
        "passed_at": previous.get("passed_at") or (now if passed else None),
        "last": "pass" if passed else "fail",
        "last_failed_checks": failed_checks,
        "last_at": now,
    }
    lab.settings[KEY] = entries
    lab.save()
    return True


def passed(lab: LabState) -> list[str]:
    """The exercises this lab's student has passed, in the order they passed them."""
    entries = lab.settings.get(KEY) or {}
    done = [(e["passed_at"], n) for n, e in entries.items() if isinstance(e, dict) and e.get("passed_at")]
    return [n for _, n in sorted(done)]
