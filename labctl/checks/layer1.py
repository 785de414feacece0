"""Layer 1: the proxy is up, received the marker, and the contract's verdict on it."""

from __future__ import annotations

import json
from typing import Any

from labctl.checks.context import CheckContext, wait_for
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult
from labctl.runtimes.process import tail


def proxy_stats(cx: CheckContext) -> dict[str, Any] | None:
    reply = http_get(cx.url("proxy", "admin", "/api/stats"), timeout=2)
    return reply.json() if reply.ok else None


def counter(stats: dict[str, Any] | None, name: str, signal: str = "metrics") -> int:
    if not stats:
        return 0
    value = stats.get("counters", {}).get(name, {}).get(signal, 0)
    return int(sum(value.values()) if isinstance(value, dict) else value)


def _records_with_marker(node: Any, marker: str) -> list[dict[str, Any]]:
    """Every dict in the payload view that mentions the marker and carries a verdict."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "verdict" in node and marker in json.dumps(node):
            found.append(node)
        else:
            for value in node.values():
                found.extend(_records_with_marker(value, marker))
    elif isinstance(node, list):
        for value in node:
            found.extend(_records_with_marker(value, marker))
    return found


def check(cx: CheckContext) -> list[CheckResult]:
    ready_url = cx.url("proxy", "admin", "/readyz")
    ready = http_get(ready_url, timeout=2)
    if not ready.ok:
        log = tail(cx.lab.log_path("proxy"), 3).strip().splitlines()
        return [CheckResult(1, "proxy answers", False, [ready.describe(), *(f"log: {x}" for x in log[-2:])],
                            cause="the logging proxy is not running or not ready, so nothing can be received",
                            hint="`labctl status`, then `labctl logs proxy` for why it stopped",
                            playbook="proxy-down")]
    results = [CheckResult(1, "proxy answers", True, [f"{ready_url}: ready"])]
    marker = cx.marker
    if marker is None or not marker.sent_ok:
        error = marker.error if marker else "no marker was sent"
        results.append(CheckResult(1, "marker received", False, [f"export to {marker.endpoint if marker else '?'}: {error}"],
                                   cause="the proxy did not accept the marker's OTLP export",
                                   hint="check the client's OTEL_EXPORTER_OTLP_ENDPOINT/PROTOCOL (`labctl env`)",
                                   playbook="marker-not-received"))
        return results
    cx.reached["proxy"] = True
    after = proxy_stats(cx)
    got = counter(after, "received") - counter(cx.before.get("proxy"), "received")
    evidence = [(f"{marker.points} data points exported with lab.marker={marker.value}; "
                f"proxy received +{got} metric points")]
    results.append(CheckResult(1, "marker received", True, evidence))
    results.append(_verdict(cx, marker.value))
    return results


def _verdict(cx: CheckContext, marker: str) -> CheckResult:
    url = cx.url("proxy", "admin", "/api/payloads")
    records: list[dict[str, Any]] = []

    def look() -> list[dict[str, Any]]:
        reply = http_get(url, timeout=2)
        if reply.ok:
            records[:] = _records_with_marker(reply.json(), marker)
        cx.notes["payloads_status"] = reply.describe()
        return records

    wait_for(look, timeout=2.0)
    if not records:
        return CheckResult(1, "contract verdict", False, [cx.notes["payloads_status"],
                                                          f"no record with lab.marker={marker} in the payload view"],
                           cause="the proxy's inspector shows no record of the marker",
                           hint="open the proxy's page and look for the marker", playbook="marker-not-received")
    violations = [r for r in records if r.get("verdict") != "ok"]
    if violations:
        first = violations[0]
        msgs = [v.get("message", "") for v in first.get("violations", [])][:2]
        return CheckResult(1, "contract verdict", False,
                           [f"{len(violations)}/{len(records)} marker records violate the contract", *msgs],
                           cause="the telemetry breaks the metric/event contract",
                           hint="read the violations on the proxy page", playbook="contract-violation")
    return CheckResult(1, "contract verdict", True, [f"{len(records)} marker records, all verdict ok ({url})"])
