"""Layer 3 (trace store): the marker's span, followed into Jaeger.

The check's marker session sends one `claude_code.interaction` span (a one-span trace) carrying
`session.id` and `lab.marker`; from module-3 on the Collector exports spans to Jaeger
(collector-configs/base.yaml `otlphttp/traces`), where span attributes become tags. So the marker's
trace is Jaeger's tag search /api/traces?service=claude-code&tags={"lab.marker":"<marker>"}.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from labctl.checks.context import CheckContext
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult
from labctl.checks.store_follow import Store, follow

STORE = Store(
    service="jaeger",
    title="Jaeger",
    health=("health", "/"),
    row="trace stored",
    record="span",
    kind="trace store",
    exporter="otlphttp/traces",
    playbook="traces-not-stored",
)


def search_url(cx: CheckContext, tags: dict[str, str]) -> str:
    query = urllib.parse.urlencode({"service": "claude-code", "tags": json.dumps(tags), "limit": "20"})
    return cx.url("jaeger", "query", "/api/traces?" + query)


def stored_spans(reply_body: str, marker: str) -> int:
    """Spans carrying the marker in a Jaeger /api/traces answer."""
    data: list[dict[str, Any]] = json.loads(reply_body).get("data") or []
    return sum(
        1
        for trace in data
        for span in trace.get("spans") or []
        if any(t.get("key") == "lab.marker" and t.get("value") == marker for t in span.get("tags") or [])
    )


def check(cx: CheckContext) -> list[CheckResult]:
    if not cx.runs("jaeger") or cx.marker is None or not cx.marker.spans:
        return []
    marker = cx.marker.value
    url = search_url(cx, {"lab.marker": marker})

    def count() -> int | None:
        reply = http_get(url, timeout=2)
        return stored_spans(reply.body, marker) if reply.ok else None

    shown = f'/api/traces?tags={{"lab.marker":"{marker}"}}'
    trace_id = cx.marker.trace_id

    def found(n: int) -> str:
        return f"{n} span(s) of trace {trace_id} in Jaeger ({shown})"

    return follow(cx, STORE, cx.marker.spans, count, shown, found)
