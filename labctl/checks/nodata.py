"""Layer 4's rule against panels that can never say "No data".

A query such as `x or vector(0)` (or `… * 0` of another series) always answers: when the pipeline
breaks, its panel shows a calm 0 instead of "No data", and the layer-4 check cannot fail for it. Such a
fallback is allowed only for a query declared "absent when healthy" in dashboards/absent-when-healthy.yaml
(its series exist only when something went wrong, such as refused items or firing alerts), and there the
check accepts "no data" as the healthy answer.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from labctl.errors import LabError

DECLARATIONS = "absent-when-healthy.yaml"

# `or vector(…)` / `or on() vector(…)`, and a product with the literal 0 (`… * 0`, `0 * …`).
_FALLBACK = re.compile(r"\bor\s+(?:on\s*\([^)]*\)\s*)?vector\s*\(|\*\s*0(?![\w.])|(?<![\w.])0\s*\*")


def fallback(expr: str) -> str | None:
    """The part of a query that makes it answer whatever the data (None when it has none)."""
    found = _FALLBACK.search(expr)
    return found.group(0).strip() if found else None


def query_key(title: str, ref_id: str) -> str:
    return f"{title} [{ref_id}]"


def declared(dashboards_dir: Path) -> dict[str, dict[str, str]]:
    """dashboard file stem -> {"<panel title> [<refId>]": why it is absent when healthy}."""
    path = dashboards_dir / DECLARATIONS
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise LabError(f"{path} is not valid YAML: {exc}", "fix the file where the message points") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise LabError(
            f"{path} must map each dashboard to its queries",
            'write e.g. pipeline-health: {"Alerts firing [A]": "no alert fires on a healthy lab"}',
        )
    return {str(k): {str(q): str(why) for q, why in v.items()} for k, v in data.items()}
