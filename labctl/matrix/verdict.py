"""A matrix case's verdict: what was observed (runner.py) held against what the case expects.

`compare` lists every mismatch in words (an empty list: the case passed); `CaseResult` is one case's
outcome as the reports (report.py) and `--json` show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.matrix.cases import Case


@dataclass
class CaseResult:
    case: Case
    ok: bool
    observed: dict[str, Any]
    mismatches: list[str]
    seconds: float
    workdir: Path
    error: str | None = None  # the harness itself failed (e.g. a receiver did not start)

    def as_dict(self) -> dict[str, Any]:
        c = self.case
        return {
            "id": c.id,
            "title": c.title,
            "dims": c.dims,
            "receiver": c.receiver,
            "focus": c.focus,
            "tags": c.tags,
            "expected": c.expect,
            "observed": self.observed,
            "ok": self.ok,
            "mismatches": self.mismatches,
            "seconds": round(self.seconds, 2),
            "harness_error": self.error,
        }


def total(d: dict[str, float] | None) -> float:
    """The sum of a counter's values over its label sets (none: 0)."""
    return sum((d or {}).values())


def compare(case: Case, obs: dict[str, Any]) -> list[str]:
    e = case.expect
    out: list[str] = []
    if e["outcome"] != "any" and obs["outcome"] != e["outcome"]:
        out.append(f"outcome: expected {e['outcome']}, observed {obs['outcome']}")
    for place in e.get("seen_in", []):
        if not obs["seen"].get(place):
            out.append(f"no data seen in {place}")
    for place in e.get("not_seen_in", []):
        if obs["seen"].get(place):
            out.append(f"data unexpectedly seen in {place}")
    text = "\n".join([*obs.get("messages", []), obs.get("startup_error") or ""])
    if "error" in e and not re.search(e["error"], text, re.MULTILINE):
        out.append(f"no message matching /{e['error']}/")
    notices = "\n".join(obs.get("notices", [])) + "\n" + (obs.get("startup_error") or "")
    if "notice" in e and not re.search(e["notice"], notices):
        out.append(f"no configuration notice matching /{e['notice']}/")
    if "retries" in e and bool(obs["retried"]) != bool(e["retries"]):
        out.append(f"retries: expected {'some' if e['retries'] else 'none'}, observed {obs['retried']}")
    if "gives_up_s" in e:
        lo, hi = e["gives_up_s"]
        g = obs.get("gives_up_s")
        if g is None or not lo <= g <= hi:
            out.append(f"gave up after {g}s, expected {lo}–{hi}s")
    if "first_export_s" in e:
        lo, hi = e["first_export_s"]
        f = obs.get("first_export_s")
        if f is None or not lo <= f <= hi:
            out.append(f"first export at {f}s, expected {lo}–{hi}s")
    if e.get("hops_agree"):
        proxy = (obs.get("proxy") or {}).get("accepted", {})
        coll = obs.get("collector") or {}
        for signal in ("metrics", "logs"):
            a, b = int(proxy.get(signal, 0)), int(total(coll.get(f"accepted_{signal}")))
            if a != b:
                out.append(f"{signal}: proxy accepted {a}, Collector accepted {b}")
    if "min_exports" in e and obs.get("metric_exports", 0) < e["min_exports"]:
        out.append(f"{obs.get('metric_exports', 0)} metric exports, expected at least {e['min_exports']}")
    return out
