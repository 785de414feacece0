"""Layer 3 (event store): the marker's event, followed into VictoriaLogs.

The check's marker session sends one Claude Code-like event with the resource attribute `lab.marker`;
from module-3 on the Collector exports events to VictoriaLogs (collector-configs/base.yaml
`otlphttp/events`), where resource and event attributes become fields. So the marker's event is the
LogsQL query `lab.marker:"<marker>"`.
"""

from __future__ import annotations

import json
import urllib.parse

from labctl.checks.context import CheckContext, wait_for
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult

NAME = "event stored"
WAIT_S = 10.0  # the Collector's batch (1 s) and its exporter, then VictoriaLogs' flush (about 1 s)


def check(cx: CheckContext) -> list[CheckResult]:
    if not cx.runs("victorialogs") or cx.marker is None or not cx.marker.events:
        return []
    ready = http_get(cx.url("victorialogs", "http", "/health"), timeout=2)
    if not ready.ok:
        return [_fail([ready.describe()], "VictoriaLogs does not answer: events are not stored")]
    if not cx.reached.get("collector"):
        # Nothing to wait for: the event never got past layer 2, which names the cause.
        return [
            CheckResult(
                3,
                NAME,
                False,
                ["the marker's event did not reach the Collector (layer 2), so it cannot be stored"],
                cause="nothing to store: fix the earlier layer first",
                playbook="events-not-stored",
            )
        ]
    query = f'lab.marker:"{cx.marker.value}" | stats count() n'
    url = cx.url("victorialogs", "http", "/select/logsql/query?query=" + urllib.parse.quote(query))
    seen: dict[str, int] = {}

    def stored() -> bool:
        reply = http_get(url, timeout=2)
        if reply.ok and reply.body.strip():
            seen["n"] = int(json.loads(reply.body.splitlines()[0]).get("n", 0))
        return seen.get("n", 0) >= cx.marker.events if cx.marker else False

    if wait_for(stored, timeout=WAIT_S, interval=0.25):
        return [
            CheckResult(
                3,
                NAME,
                True,
                [f"{seen['n']} event(s) with lab.marker={cx.marker.value} in VictoriaLogs (LogsQL: {query})"],
            )
        ]
    return [
        _fail(
            [
                (
                    f"{seen.get('n', 0)} of the marker's {cx.marker.events} event(s) in VictoriaLogs "
                    f"after {WAIT_S:.0f}s (LogsQL: {query})"
                ),
            ],
            "the Collector's events do not reach the event store (the collector → victorialogs hop)",
        )
    ]


def _fail(evidence: list[str], cause: str) -> CheckResult:
    return CheckResult(
        3,
        NAME,
        False,
        evidence,
        cause=cause,
        hint="`labctl logs collector` shows the otlphttp/events exporter's errors; `labctl logs victorialogs`",
        playbook="events-not-stored",
    )
