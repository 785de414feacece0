"""Evidence in words a student reads: a service's machine answer turned into a short phrase."""

from __future__ import annotations

import json
import re
from typing import Any

# What the proxy spools, per signal, in the words a student reads on its page.
_ITEMS = {
    "metrics": ("metric point", "metric points"),
    "logs": ("log record", "log records"),
    "traces": ("span", "spans"),
}


def spool_text(spooled: dict[str, Any]) -> str:
    """`{'metrics': 14, 'logs': 1, 'traces': 0}` as `14 metric points, 1 log record`; `none` when empty."""
    parts = []
    for signal, count in spooled.items():
        if count:
            one, many = _ITEMS.get(signal, (f"{signal} item", f"{signal} items"))
            parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts) or "none"


def health_text(body: str) -> str:
    """The health_check extension's JSON as a sentence (`Server available, up 2.6s`), not a cut document."""
    try:
        doc = json.loads(body)
        status = str(doc["status"])
    except (ValueError, KeyError, TypeError):
        return " ".join(body.split())[:80]
    uptime = str(doc.get("uptime", ""))
    # A Go duration (`2.602548252s`, `1h2m3.504s`): its seconds to a tenth.
    uptime = re.sub(r"(\d+\.\d+)s$", lambda m: f"{float(m.group(1)):.1f}s", uptime)
    return f"{status}, up {uptime}" if uptime else status
