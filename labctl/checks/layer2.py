"""Layer 2: the marker got from the proxy into the Collector, and the Collector exported it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from labctl.checks import exposition
from labctl.checks.context import CheckContext, service_env, wait_for
from labctl.checks.evidence_text import health_text, spool_text
from labctl.checks.layer1 import counter, proxy_stats
from labctl.checks.probe import error_lines, http_get
from labctl.checks.result import CheckResult
from labctl.checks.upstream import Diagnosis, diagnose, diagnose_in_container, parse_headers
from labctl.runtimes.process import tail

ACCEPTED = r"otelcol_receiver_accepted_metric_points(_total)?"
REFUSED = r"otelcol_receiver_refused_metric_points(_total)?"
SENT = r"otelcol_exporter_sent_metric_points(_total)?"
FAILED = r"otelcol_exporter_send_failed_metric_points(_total)?"
QUEUE = r"otelcol_exporter_queue_size"
CAPACITY = r"otelcol_exporter_queue_capacity"


def internal_metrics(cx: CheckContext) -> list[exposition.Sample] | None:
    reply = http_get(cx.url("collector", "internal", "/metrics"), timeout=2)
    return exposition.parse(reply.body) if reply.ok else None


def _marker_exported(cx: CheckContext) -> bool:
    def listed() -> bool:
        reply = http_get(cx.url("collector", "prom_exporter", "/metrics"), timeout=2)
        return bool(reply.ok and cx.marker and f'lab_marker="{cx.marker.value}"' in reply.body)

    if not listed():
        return False
    # A read in the millisecond the batch lands lists even a series the exporter forgets at once (the
    # series-expiry trap's 1 ms metric_expiration): a kept series is still listed a moment later.
    time.sleep(0.05)
    return listed()


def check(cx: CheckContext) -> list[CheckResult]:
    health_url = cx.url("collector", "health", "/")
    health = http_get(health_url, timeout=2)
    results: list[CheckResult] = []
    if not health.ok:
        log = error_lines(tail(cx.lab.log_path("collector"), 40))
        results.append(
            CheckResult(
                2,
                "collector health",
                False,
                [health.describe(), *(f"log: {x}" for x in log[-2:])],
                cause="the Collector is not running (or not healthy): the proxy has nowhere "
                "to deliver, so it spools and retries",
                hint="`labctl status`; `labctl logs collector`; heal or restart it",
                playbook="collector-down",
            )
        )
    else:
        results.append(
            CheckResult(2, "collector health", True, [f"{health_url}: {health_text(health.body)}"])
        )
    results.append(_delivery(cx, health.ok))
    if cx.reached.get("collector") and cx.marker and cx.marker.commits > 1:
        results.append(_totals(cx))
    if cx.reached.get("collector") and cx.marker and cx.marker.events:
        results.append(_events(cx))
    if health.ok:
        results.append(_pipeline(cx))
    return results


ACCEPTED_LOGS = r"otelcol_receiver_accepted_log_records(_total)?"


def _events(cx: CheckContext) -> CheckResult:
    """The marker's event (an OTLP log record, like Claude Code's events) reached the Collector."""
    assert cx.marker is not None
    sent = cx.marker.events
    seen: dict[str, Any] = {}

    def settled() -> bool:
        now = internal_metrics(cx) or []
        seen["accepted"] = (exposition.total(now, ACCEPTED_LOGS) or 0) - (
            exposition.total(cx.before.get("collector") or [], ACCEPTED_LOGS) or 0
        )
        seen["stats"] = proxy_stats(cx) or {}
        seen["dropped"] = _dropped(seen["stats"], "logs") - _dropped(cx.before.get("proxy"), "logs")
        return bool(seen["accepted"] >= sent or seen["dropped"])

    wait_for(settled, timeout=3.0)
    accepted, dropped = seen.get("accepted", 0), seen.get("dropped", 0)
    evidence = [f"the marker sent {sent} event; the Collector's receiver accepted +{accepted:g} log records"]
    if accepted >= sent:
        return CheckResult(2, "events", True, evidence)
    upstream = (seen.get("stats") or {}).get("upstream") or {}
    if dropped:
        evidence.append(f"the proxy dropped +{dropped} log records the upstream refused for good")
    if upstream.get("last_error"):
        evidence.append(f"proxy's last upstream error: {str(upstream['last_error'])[:200]}")
    return CheckResult(
        2,
        "events",
        False,
        evidence,
        cause="the Collector takes metrics but not events: no logs pipeline receives OTLP logs, so "
        "they are refused (UNIMPLEMENTED / 404) and lost"
        if dropped
        else "the marker's event did not reach the Collector's receiver",
        hint="compare the Collector's service::pipelines with the signals the client sends",
        playbook="events-missing",
    )


def _dropped(stats: dict[str, Any] | None, signal: str) -> int:
    value = ((stats or {}).get("counters", {}).get("dropped") or {}).get(signal) or {}
    return int(sum(value.values()) if isinstance(value, dict) else value)


COMMITS = r"claude_code_commit_count(_total)?"


def _totals(cx: CheckContext) -> CheckResult:
    """The marker's commit counter as the exporter totals it: the marker sent its commits as deltas with an
    interval between them in which that series had no point, like any sparse series of Claude Code's."""
    assert cx.marker is not None
    sent, url = cx.marker.commits, cx.url("collector", "prom_exporter", "/metrics")
    seen: dict[str, float | None] = {}

    def summed() -> bool:
        reply = http_get(url, timeout=2)
        samples = exposition.parse(reply.body) if reply.ok else []
        seen["total"] = exposition.total(samples, COMMITS, lab_marker=cx.marker.value if cx.marker else "")
        return seen["total"] is not None and seen["total"] >= sent

    wait_for(summed, timeout=3.0)
    total = seen.get("total")
    evidence = [
        (
            f"the marker sent {sent} commits as {sent} delta points, the last after an interval without "
            f"one; {url} totals claude_code_commit_count_total at "
            + ("nothing" if total is None else f"{total:g}")
        )
    ]
    if total is not None and total >= sent:
        return CheckResult(2, "counter totals", True, evidence)
    return CheckResult(
        2,
        "counter totals",
        False,
        evidence,
        cause="the Collector's exporter undercounts a delta counter: a delta that does not start where "
        "the series' last point ended replaces the total instead of adding to it (delta temporality "
        "without delta_to_cumulative)",
        hint="compare `labctl proxy sessions` with Prometheus; look at the Collector's metrics pipeline",
        playbook="delta-temporality",
    )


def _delivery(cx: CheckContext, collector_up: bool) -> CheckResult:
    name = "proxy → collector"
    if not cx.reached.get("proxy"):
        return CheckResult(
            2,
            name,
            False,
            ["the marker never reached the proxy (layer 1)"],
            cause="nothing to deliver: fix layer 1 first",
            playbook="marker-not-received",
        )
    # Both outcomes of the wait below end in a probe of the proxy's upstream (a slow hop still delivers;
    # a broken one needs its cause), and that probe takes seconds on a hanging hop: start it now, beside
    # the wait, for the upstream the proxy reports. Its target does not change meanwhile.
    early: Future[Diagnosis] | None = None
    before = (proxy_stats(cx) or {}).get("upstream") or {}
    if before.get("endpoint") and collector_up:
        early = _in_background(_diagnose, cx, str(before["endpoint"]), str(before.get("protocol", "grpc")))
    # The Collector batches for up to 1s; the proxy forwards as soon as it has spooled.
    cx.progress("waiting for the marker at the Collector (batch timeout)")
    seen: dict[str, bool] = {}

    def settled() -> bool:
        # Stop early when the marker is there, or when the proxy already reports failed attempts.
        seen["arrived"] = _marker_exported(cx)
        state = ((proxy_stats(cx) or {}).get("upstream") or {}).get("state")
        return seen["arrived"] or state in ("retrying", "auth_failed")

    wait_for(settled, timeout=4.0 if collector_up else 0.5)
    arrived = seen.get("arrived", False) or _marker_exported(cx)
    stats = proxy_stats(cx) or {}
    upstream: dict[str, Any] = stats.get("upstream", {})
    fwd = counter(stats, "forwarded") - counter(cx.before.get("proxy"), "forwarded")
    evidence = [
        (
            f"proxy forwarded +{fwd} metric points to {upstream.get('endpoint') or '(none)'} "
            f"(state {upstream.get('state', '?')})"
        )
    ]
    if upstream.get("last_error"):
        age = upstream.get("last_error_age_s")
        healed_at = cx.lab.settings.get("healed_at")
        # Clean slate: an error from before the latest heal is an earlier fault's, not this one's.
        earlier = healed_at is not None and age is not None and time.time() - float(age) < float(healed_at)
        evidence.append(
            f"proxy's last upstream error ({age}s ago"
            + (", before the last heal: from an earlier fault" if earlier else "")
            + f"): {upstream['last_error'][:200]}"
        )
    spooled = stats.get("gauges", {}).get("spooled", {})
    if spooled:
        evidence.append(f"spooled (acknowledged, waiting): {spool_text(spooled)}")
    endpoint, protocol = upstream.get("endpoint", ""), upstream.get("protocol", "grpc")
    if arrived:
        cx.reached["collector"] = True
        evidence.insert(
            0, f"lab_marker={cx.marker.value if cx.marker else ''} is on the Collector's exporter"
        )
        # Arrived, but is the hop healthy? A slow hop delivers, late.
        if endpoint:
            probe = _probe_result(cx, early, before, endpoint, protocol)
            if not probe.ok and probe.playbook == "upstream-slow":
                return CheckResult(
                    2,
                    name,
                    False,
                    evidence + probe.evidence,
                    cause=probe.cause,
                    hint="look for added latency on the hop (`labctl faults`), or a slow Collector",
                    playbook=probe.playbook,
                )
            evidence.extend(probe.evidence[1:])
        return CheckResult(2, name, True, evidence)
    if not endpoint:
        return CheckResult(
            2,
            name,
            False,
            evidence,
            cause="the proxy has no upstream configured",
            hint="module-2 and later set LAB_PROXY_UPSTREAM; `labctl up module-2`",
            playbook="upstream-unreachable",
        )
    if not collector_up:
        return CheckResult(
            2,
            name,
            False,
            evidence,
            cause="the Collector is down, so the proxy cannot deliver "
            "(it keeps the data in its spool and retries)",
            hint="bring the Collector back (`labctl heal` / `labctl up`); the spool drains by itself",
            playbook="collector-down",
        )
    probe = _probe_result(cx, early, before, endpoint, protocol)
    if probe.ok:
        # The hop works now (e.g. just healed): the proxy delivers on its next retry, after its current
        # backoff. Wait that long (from its own /api/stats) before calling anything a failure.
        retry_in = _retry_in(stats)
        cx.progress("the upstream answers; waiting for the proxy's next retry")
        if wait_for(lambda: _marker_exported(cx), timeout=min(12.0, (retry_in or 0) + 4.0)):
            cx.reached["collector"] = True
            return CheckResult(
                2,
                name,
                True,
                [
                    (
                        f"lab_marker={cx.marker.value if cx.marker else ''} is on the "
                        "Collector's exporter (delivered on the proxy's next retry)"
                    ),
                    *evidence,
                    *probe.evidence[1:],
                ],
            )
        now = proxy_stats(cx) or {}
        state = (now.get("upstream") or {}).get("state")
        last_error = str((now.get("upstream") or {}).get("last_error") or "")
        if state == "retrying" and "refused" in last_error.lower() and "memory" in last_error.lower():
            # The hop answers (an empty export is accepted) but real data is refused: the Collector's own
            # memory_limiter, not the way there.
            return CheckResult(
                2,
                name,
                False,
                evidence + probe.evidence[1:],
                cause="the Collector answers but refuses the proxy's data (its memory_limiter: "
                '"data refused due to high memory usage")',
                hint="compare the Collector's memory_limiter with what it uses "
                "(otelcol_process_runtime_heap_alloc_bytes on its internal metrics)",
                playbook="collector-refusing",
            )
        if state in ("retrying", "auth_failed"):
            retry_in = _retry_in(now)
            when = f"retrying in {retry_in:.0f} s" if retry_in is not None else "retrying soon"
            return CheckResult(
                2,
                name,
                False,
                evidence + probe.evidence[1:],
                cause=f"the proxy is in backoff after earlier failed attempts ({when}): the "
                "upstream answers again and the spooled data goes out on that retry",
                hint=f"wait {retry_in or 5:.0f} s and run `labctl check` again "
                "(/api/stats → upstream.next_attempt_in_s)",
                playbook="upstream-unreachable",
            )
        sent = _exporter_sent(cx)
        if cx.marker and sent >= cx.marker.points:
            # Accepted and handed to the exporter, yet not on its page: the exporter let it go.
            return CheckResult(
                2,
                name,
                False,
                [
                    *evidence,
                    f"the Collector's prometheus exporter took +{sent:g} points (internal metrics)",
                    *probe.evidence[1:],
                ],
                cause="the Collector's prometheus exporter took the marker's points but its /metrics "
                "page shows none of them: it forgets series before anyone scrapes them "
                "(metric_expiration)",
                hint="watch the exporter's /metrics right after an export; read its metric_expiration",
                playbook="series-expiring",
            )
        return CheckResult(
            2,
            name,
            False,
            evidence + probe.evidence[1:],
            cause="the upstream answers and the proxy is not backing off, but the marker is not "
            "on the Collector's exporter",
            hint="look at the Collector's pipeline and exporter (`labctl logs collector`)",
            playbook="collector-export-failing",
        )
    return CheckResult(
        2,
        name,
        False,
        evidence + probe.evidence[1:],
        cause=probe.cause,
        hint={
            "upstream-auth": "make the proxy's LAB_PROXY_UPSTREAM_HEADERS carry the Collector's token",
            "upstream-protocol": "match LAB_PROXY_UPSTREAM_PROTOCOL to the Collector port",
            "upstream-slow": "find what delays the hop",
        }.get(probe.playbook, "check the proxy's upstream address and the path to the Collector"),
        playbook=probe.playbook,
    )


def _exporter_sent(cx: CheckContext) -> float:
    """Metric points the prometheus exporter took since the check began."""
    now = internal_metrics(cx) or []
    before = cx.before.get("collector") or []
    return (exposition.total(now, SENT, exporter="prometheus") or 0) - (
        exposition.total(before, SENT, exporter="prometheus") or 0
    )


def _in_background(fn: Callable[..., Diagnosis], *args: Any) -> Future[Diagnosis]:
    """fn(*args) on a daemon thread: an answer nobody waits for does not hold up the command's exit."""
    future: Future[Diagnosis] = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def _probe_result(
    cx: CheckContext,
    early: Future[Diagnosis] | None,
    before: dict[str, Any],
    endpoint: str,
    protocol: str,
) -> Diagnosis:
    """The early probe's answer when it probed this same upstream; else a probe now."""
    if early is not None and (before.get("endpoint"), before.get("protocol", "grpc")) == (endpoint, protocol):
        return early.result()
    return _diagnose(cx, endpoint, protocol)


def _diagnose(cx: CheckContext, endpoint: str, protocol: str) -> Diagnosis:
    """Probe the proxy's upstream from where the proxy runs (this host, or its container on Docker)."""
    if cx.lab.runtime != "docker":
        return diagnose(endpoint, protocol, _headers(cx), _otlp_ports(cx), cx.slow_hop_ms)
    from labctl.runtimes.compose_names import container_name
    from labctl.runtimes.docker_images import clean_call

    ports = {name: port.container for name, port in cx.model.service("collector").ports.items()}
    container = container_name(cx.lab.instance, "proxy")
    return diagnose_in_container(
        container, clean_call(["docker"]), endpoint, protocol, _headers(cx), ports, cx.slow_hop_ms
    )


def _otlp_ports(cx: CheckContext) -> dict[str, int]:
    """Where the proxy may rightly send: the Collector's ports and, natively, the OTLP relay in front of it."""
    via = cx.model.hop("proxy-collector").native_via  # lab.yaml: the relay the hop goes through
    relay = (
        {f"{via[0]}.{k}": v for k, v in cx.lab.ports.get(via[0], {}).items() if k != "control"} if via else {}
    )
    return {**cx.lab.ports.get("collector", {}), **relay}


def _retry_in(stats: dict[str, Any]) -> float | None:
    value = (stats.get("upstream") or {}).get("next_attempt_in_s")
    return float(value) if value is not None else None


def _headers(cx: CheckContext) -> dict[str, str]:
    """The headers the proxy sends upstream, as far as we can know them: its configured ones, plus a
    placeholder for any header it was given at runtime (PUT /api/upstream shows names, never values)."""
    env = service_env(cx.lab, cx.model, "proxy")
    headers = parse_headers(env.get("LAB_PROXY_UPSTREAM_HEADERS", ""))
    upstream = (proxy_stats(cx) or {}).get("upstream") or {}
    if upstream.get("configured") is False:
        names = set(upstream.get("header_names") or [])
        headers = {k: v for k, v in headers.items() if k in names}
        for name in names - set(headers):
            headers[name] = "(set at runtime, value not readable)"
    return headers


def _pipeline(cx: CheckContext) -> CheckResult:
    now = internal_metrics(cx)
    url = cx.url("collector", "internal", "/metrics")
    if now is None:
        return CheckResult(
            2,
            "collector pipeline",
            False,
            [f"{url}: no answer"],
            cause="the Collector's internal metrics endpoint does not answer",
            playbook="collector-down",
        )
    before = cx.before.get("collector") or []

    def delta(regex: str, **labels: str) -> float:
        return (exposition.total(now, regex, **labels) or 0) - (
            exposition.total(before, regex, **labels) or 0
        )

    accepted, refused = delta(ACCEPTED), delta(REFUSED)
    sent, failed = delta(SENT, exporter="prometheus"), delta(FAILED)
    queue = exposition.total(now, QUEUE) or 0
    capacity = exposition.total(now, CAPACITY) or 0
    evidence = [
        f"receiver accepted +{accepted:g} / refused +{refused:g} metric points",
        f"exporter prometheus sent +{sent:g}, send failures +{failed:g}; queue {queue:g}/{capacity:g}",
        f"from {url}",
    ]
    if refused > 0:
        return CheckResult(
            2,
            "collector pipeline",
            False,
            evidence,
            cause="the Collector's receiver refuses data (memory_limiter or invalid data)",
            playbook="collector-refusing",
        )
    if failed > 0 or (capacity and queue / capacity > 0.8):
        return CheckResult(
            2,
            "collector pipeline",
            False,
            evidence,
            cause="the Collector accepts data but its exporter fails or its queue fills",
            playbook="collector-export-failing",
        )
    return CheckResult(2, "collector pipeline", True, evidence)
