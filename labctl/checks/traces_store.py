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

from labctl.checks.context import CheckContext, wait_for
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult

NAME = "trace stored"
PLAYBOOK = "traces-not-stored"
WAIT_S = 10.0  # the Collector's batch (1 s) and its exporter; Jaeger stores on receipt


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
    ready = http_get(cx.url("jaeger", "health", "/"), timeout=2)
    if not ready.ok:
        return [_fail([ready.describe()], "Jaeger does not answer: spans are not stored")]
    if not cx.reached.get("collector"):
        # Nothing to wait for: the span never got past layer 2, which names the cause.
        return [
            CheckResult(
                3,
                NAME,
                False,
                ["the marker's span did not reach the Collector (layer 2), so it cannot be stored"],
                cause="nothing to store: fix the earlier layer first",
                playbook=PLAYBOOK,
            )
        ]
    marker = cx.marker.value
    url = search_url(cx, {"lab.marker": marker})
    seen: dict[str, int] = {}

    def stored() -> bool:
        reply = http_get(url, timeout=2)
        if reply.ok:
            seen["n"] = stored_spans(reply.body, marker)
        return seen.get("n", 0) >= cx.marker.spans if cx.marker else False

    shown = f'/api/traces?tags={{"lab.marker":"{marker}"}}'
    if wait_for(stored, timeout=WAIT_S, interval=0.25):
        return [
            CheckResult(
                3,
                NAME,
                True,
                [f"{seen['n']} span(s) of trace {cx.marker.trace_id} in Jaeger ({shown})"],
            )
        ]
    return [
        _fail(
            [
                f"{seen.get('n', 0)} of the marker's {cx.marker.spans} span(s) in Jaeger after {WAIT_S:.0f}s ({shown})"
            ],
            "the Collector's spans do not reach the trace store (the collector → jaeger hop)",
        )
    ]


def _fail(evidence: list[str], cause: str) -> CheckResult:
    return CheckResult(
        3,
        NAME,
        False,
        evidence,
        cause=cause,
        hint="`labctl logs collector` shows the otlphttp/traces exporter's errors; `labctl logs jaeger`",
        playbook=PLAYBOOK,
    )
