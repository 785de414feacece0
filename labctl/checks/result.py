"""The typed result every check returns; the table and `--json` both print it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# `labctl check` exits with FIRST_LAYER_EXIT + layer of the first failing layer (11..14), 0 when green.
FIRST_LAYER_EXIT = 10


@dataclass
class CheckResult:
    layer: int
    name: str
    ok: bool
    evidence: list[str] = field(default_factory=list)
    cause: str | None = None
    hint: str | None = None
    playbook: str | None = None
    skipped: bool = False  # the stage does not run this layer: neither pass nor fail
    warning: bool = False  # passes (exit code stays green) but shows something to look at, e.g. firing alerts
    notes: str | None = field(default=None, repr=False)  # machine hints between checks, not printed

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skip"
        if not self.ok:
            return "FAIL"
        return "warn" if self.warning else "ok"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("notes", None)
        data["verdict"] = self.verdict
        return data


def first_failing_layer(results: list[CheckResult]) -> int | None:
    failing = [r.layer for r in results if not r.ok and not r.skipped]
    return min(failing) if failing else None


def exit_code(results: list[CheckResult]) -> int:
    layer = first_failing_layer(results)
    return 0 if layer is None else FIRST_LAYER_EXIT + layer
