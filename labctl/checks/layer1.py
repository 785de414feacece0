"""Layer 1: the proxy is up, received the marker, and the contract's verdict on it."""

from __future__ import annotations

import json
from typing import Any

from labctl.checks.context import CheckContext, wait_for
from labctl.checks.probe import error_lines, http_get
from labctl.checks.result import CheckResult
from labctl.runtimes.process import tail


def proxy_stats(cx: CheckContext) -> dict[str, Any] | None:
    reply = http_get(cx.url("proxy", "admin", "/api/stats"), timeout=2, headers=cx.lab.admin_headers())
    return reply.json() if reply.ok else None


def counter(stats: dict[str, Any] | None, name: str, signal: str = "metrics") -> int:
    if not stats:
        return 0
    value = stats.get("counters", {}).get(name, {}).get(signal, 0)
    return int(sum(value.values()) if isinstance(value, dict) else value)


def last_payload_seq(cx: CheckContext) -> int:
    reply = http_get(
        cx.url("proxy", "admin", "/api/payloads?limit=1"), timeout=2, headers=cx.lab.admin_headers()
    )
    return int(reply.json().get("last_seq", 0)) if reply.ok else 0


def check(cx: CheckContext) -> list[CheckResult]:
    ready_url = cx.url("proxy", "admin", "/readyz")
    ready = http_get(ready_url, timeout=2)
    if not ready.ok:
        log = error_lines(tail(cx.lab.log_path("proxy"), 40))
        return [
            CheckResult(
                1,
                "proxy answers",
                False,
                [ready.describe(), *(f"log: {x}" for x in log[-2:])],
                cause="the logging proxy is not running or not ready, so nothing can be received",
                hint="`labctl status`, then `labctl logs proxy` for why it stopped",
                playbook="proxy-down",
            )
        ]
    results = [CheckResult(1, "proxy answers", True, [f"{ready_url}: ready"])]
    marker = cx.marker
    if marker is None or not marker.sent_ok:
        error = marker.error if marker else "no marker was sent"
        results.append(
            CheckResult(
                1,
                "marker received",
                False,
                [f"export to {marker.endpoint if marker else '?'}: {error}"],
                cause="the proxy did not accept the marker's OTLP export",
                hint="check the client's OTEL_EXPORTER_OTLP_ENDPOINT/PROTOCOL (`labctl env`)",
                playbook="marker-not-received",
            )
        )
        return results
    cx.reached["proxy"] = True
    after = proxy_stats(cx)
    got = counter(after, "received") - counter(cx.before.get("proxy"), "received")
    events = counter(after, "received", "logs") - counter(cx.before.get("proxy"), "received", "logs")
    evidence = [
        (
            f"{marker.points} data points and {marker.events} event exported with lab.marker={marker.value}; "
            f"proxy received +{got} metric points, +{events} log records"
        )
    ]
    results.append(CheckResult(1, "marker received", True, evidence))
    results.append(_verdict(cx, marker.value))
    return results


def _verdict(cx: CheckContext, marker: str) -> CheckResult:
    """The contract verdict on the payloads that carried the marker (the inspector's payload view)."""
    base = cx.url("proxy", "admin", "/api/payloads")
    after = int(cx.before.get("payload_seq", 0))
    found: list[dict[str, Any]] = []

    def look() -> list[dict[str, Any]]:
        reply = http_get(f"{base}?after={after}&limit=50", timeout=2, headers=cx.lab.admin_headers())
        cx.notes["payloads_status"] = reply.describe()
        if not reply.ok:
            return []
        found.clear()
        for summary in reply.json().get("payloads", []):
            detail = http_get(f"{base}/{summary['id']}", timeout=2, headers=cx.lab.admin_headers())
            if detail.ok and marker in json.dumps(detail.json().get("records", [])):
                found.append(detail.json())
        return found

    # Metrics, the event and the span are separate requests: wait until each is in the view.
    wanted = 1 + (1 if cx.marker and cx.marker.events else 0) + (1 if cx.marker and cx.marker.spans else 0)
    wait_for(lambda: len(look()) >= wanted, timeout=2.0)
    if not found:
        return CheckResult(
            1,
            "contract verdict",
            False,
            [cx.notes["payloads_status"], f"no payload with lab.marker={marker} in {base}"],
            cause="the proxy's inspector shows no payload carrying the marker",
            hint="open the proxy's page and look for the marker",
            playbook="marker-not-received",
        )
    evidence = []
    for p in found:
        evidence.append(f"payload #{p['id']} {p['signal']}: {p['items']} items, verdict {p['verdict']}")
        if p.get("message"):
            # "N of M … violate contract 'x': path: why; path: why" — the count, then the first example whole.
            count, _, examples = p["message"].partition(": ")
            evidence += [count, f"first: {examples.split('; ')[0]}"] if examples else [count]
    if any(p.get("verdict") != "ok" for p in found):
        return CheckResult(
            1,
            "contract verdict",
            False,
            evidence,
            cause="the telemetry breaks the metric/event contract",
            hint="read the violations on the proxy page (or `labctl proxy export --what violations`)",
            playbook="contract-violation",
        )
    return CheckResult(1, "contract verdict", True, evidence)
