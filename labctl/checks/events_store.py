"""Layer 3 (event store): the marker's event, followed into VictoriaLogs.

The check's marker session sends one Claude Code-like event with the resource attribute `lab.marker`;
from module-3 on the Collector exports events to VictoriaLogs (collector-configs/base.yaml
`otlphttp/events`), where resource and event attributes become fields. So the marker's event is the
LogsQL query `lab.marker:"<marker>"`.
"""

from __future__ import annotations

import json
import urllib.parse

from labctl.checks.context import CheckContext
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult
from labctl.checks.store_follow import Store, follow

STORE = Store(
    service="victorialogs",
    title="VictoriaLogs",
    health=("http", "/health"),
    row="event stored",
    record="event",
    kind="event store",
    exporter="otlphttp/events",
    playbook="events-not-stored",
)


def check(cx: CheckContext) -> list[CheckResult]:
    if not cx.runs("victorialogs") or cx.marker is None or not cx.marker.events:
        return []
    query = f'lab.marker:"{cx.marker.value}" | stats count() n'
    url = cx.url("victorialogs", "http", "/select/logsql/query?query=" + urllib.parse.quote(query))

    def count() -> int | None:
        reply = http_get(url, timeout=2)
        if not (reply.ok and reply.body.strip()):
            return None
        return int(json.loads(reply.body.splitlines()[0]).get("n", 0))

    marker = cx.marker.value

    def found(n: int) -> str:
        return f"{n} event(s) with lab.marker={marker} in VictoriaLogs (LogsQL: {query})"

    return follow(cx, STORE, cx.marker.events, count, f"LogsQL: {query}", found)
