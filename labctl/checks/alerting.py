"""Layer 4 (alerting): a test notification, proven end to end — rule → Prometheus → Alertmanager → receiver.

Once the check's marker is stored, the rule LabCheckNotification (lab/prometheus/rules/lab-check.yml)
fires for it; Alertmanager routes it at once (lab/alertmanager/alertmanager.yml) to the notify-receiver.
The check waits for that notification. When it does not come, the hop is found by asking each side in
turn: Alertmanager has the alert (then its hop to the receiver failed), or Prometheus fired it (then
its hop to Alertmanager failed), or the rule never fired.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from labctl.checks.context import CheckContext, wait_for
from labctl.checks.layer3 import CHECK_ALERT
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult

NAME = "test notification"
# Scrape (5 s) + rule evaluation (5 s) + Alertmanager's immediate route, with room for a slow machine.
WAIT_S = 20.0


def check(cx: CheckContext) -> list[CheckResult]:
    if not cx.runs("alertmanager"):
        return []
    ready = http_get(cx.url("alertmanager", "web", "/-/ready"), timeout=2)
    if not ready.ok:
        return [
            _fail(
                [ready.describe()],
                "Alertmanager does not answer: no alert can notify anyone",
                "alertmanager-unreachable",
                "`labctl status`, `labctl logs alertmanager`; `labctl up module-4` starts it again",
            )
        ]
    if cx.marker is None or not cx.reached.get("prometheus"):
        return [
            _fail(
                ["the marker is not in Prometheus (layer 3), so no test alert could fire"],
                "nothing to notify about: fix the earlier layer first",
                "notification-undelivered",
            )
        ]
    marker = cx.marker.value
    cx.progress("waiting for the test notification (rule → Prometheus → Alertmanager → receiver)")
    start = time.monotonic()
    seen: dict[str, Any] = {}

    def delivered() -> bool:
        reply = http_get(cx.url("notify-receiver", "web", "/api/notifications"), timeout=2)
        seen["receiver"] = reply
        if not reply.ok:
            return False
        for item in reply.json().get("notifications", []):
            for alert in item.get("alerts", []):
                labels = alert.get("labels", {})
                if labels.get("alertname") == CHECK_ALERT and labels.get("lab_marker") == marker:
                    seen["item"] = item
                    return True
        return False

    if wait_for(delivered, timeout=WAIT_S, interval=0.5):
        took = time.monotonic() - start
        return [
            CheckResult(
                4,
                NAME,
                True,
                [
                    (
                        f"{CHECK_ALERT} for marker {marker} reached the notify-receiver "
                        f"(notification #{seen['item']['seq']}; waited {took:.1f}s for it)"
                    ),
                    "so Prometheus → Alertmanager → receiver deliver: `labctl url notify-receiver`",
                ],
            )
        ]
    return [_diagnose(cx, marker, seen.get("receiver"))]


def _diagnose(cx: CheckContext, marker: str, receiver: Any) -> CheckResult:
    evidence = [f"no notification for marker {marker} at the notify-receiver after {WAIT_S:.0f}s"]
    if receiver is not None and not receiver.ok:
        evidence.append(f"the receiver's own API: {receiver.describe()}")
    matcher = urllib.parse.quote(f'lab_marker="{marker}"')
    held = http_get(cx.url("alertmanager", "web", f"/api/v2/alerts?filter={matcher}"), timeout=3)
    alerts = held.json() if held.ok else []
    if alerts:
        state = (alerts[0].get("status") or {}).get("state", "?")
        evidence.append(f"Alertmanager holds the test alert (state {state})")
        if state == "suppressed":
            return _fail(
                [*evidence, "a silence or an inhibition rule mutes it"],
                "Alertmanager has the test alert but a silence or inhibition mutes it",
                "notification-undelivered",
                "`amtool silence query` lists silences; inhibit_rules are in lab/alertmanager/alertmanager.yml",
            )
        failed = _counter(
            cx, "alertmanager", "alertmanager_notifications_failed_total", 'integration="webhook"'
        )
        if failed is not None:
            evidence.append(
                f"failed webhook deliveries so far: {failed:g} (alertmanager_notifications_failed_total)"
            )
        return _fail(
            evidence,
            "Alertmanager has the test alert but cannot deliver it to the notify-receiver "
            "(the alertmanager → receiver hop)",
            "notification-undelivered",
            "`labctl logs alertmanager` shows each failed attempt; it keeps retrying, nothing is lost",
        )
    firing = http_get(cx.url("prometheus", "web", "/api/v1/alerts"), timeout=3)
    fired = firing.ok and any(
        a["labels"].get("alertname") == CHECK_ALERT and a["labels"].get("lab_marker") == marker
        for a in firing.json()["data"]["alerts"]
    )
    if fired:
        evidence.append("Prometheus fired the test alert; Alertmanager never received it")
        errors = _counter(cx, "prometheus", "prometheus_notifications_errors_total")
        if errors is not None:
            evidence.append(
                f"failed sends to Alertmanager so far: {errors:g} (prometheus_notifications_errors_total)"
            )
        return _fail(
            evidence,
            "Prometheus cannot deliver alerts to Alertmanager (the prometheus → alertmanager hop)",
            "alertmanager-unreachable",
            "Prometheus' Status → Runtime page and `labctl logs prometheus` show the send errors",
        )
    evidence.append(firing.describe() if not firing.ok else "Prometheus has not fired the test alert")
    return _fail(
        evidence,
        f"the {CHECK_ALERT} rule did not fire for the marker",
        "alert-rules-missing",
        "is lab/prometheus/rules/lab-check.yml loaded? (Prometheus' /api/v1/rules)",
    )


def _counter(cx: CheckContext, service: str, name: str, selector: str = "") -> float | None:
    """Sum of one counter from a service's own /metrics page (None when it cannot be read)."""
    reply = http_get(cx.url(service, "web", "/metrics"), timeout=2)
    if not reply.ok:
        return None
    total, found = 0.0, False
    for line in reply.body.splitlines():
        if line.startswith(name) and (not selector or selector in line):
            try:
                total += float(line.rsplit(" ", 1)[1])
                found = True
            except ValueError:
                continue
    return total if found else None


def _fail(evidence: list[str], cause: str, playbook: str, hint: str | None = None) -> CheckResult:
    return CheckResult(4, NAME, False, evidence, cause=cause, hint=hint, playbook=playbook)
