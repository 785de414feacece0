"""Layer 3: Prometheus is ready, scrapes its targets, holds the marker, has the pipeline rules loaded."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import Future
from typing import Any

import requests
import yaml
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

from labctl import scrape_targets
from labctl.checks import scrape_probe
from labctl.checks.context import CheckContext, wait_for
from labctl.checks.probe import Reply, http_get
from labctl.checks.result import CheckResult
from labctl.promql import client
from labctl.scrape_targets import Target
from labctl.units import prometheus_duration

PIPELINE_GROUP = "lab-pipeline-health"
CHECK_ALERT = "LabCheckNotification"  # lab/prometheus/rules/lab-check.yml: labctl check's test notification


def prom(cx: CheckContext) -> PrometheusConnect:
    return client(cx.url("prometheus", "web"), timeout=3)


def query(cx: CheckContext, promql: str) -> list[dict[str, Any]]:
    return prom(cx).custom_query(promql)


def start_scrape_view(cx: CheckContext) -> None:
    """Begin reading Prometheus' view of its scrape targets on a thread of its own: it waits for the
    scrapes after the lab's latest change (up to an interval and a timeout), which needs nothing from
    layers 1 and 2, so it runs beside them. check() takes its outcome."""
    future: Future[tuple[Reply, CheckResult | None]] = Future()

    def run() -> None:
        try:
            future.set_result(_scrape_view(cx))
        except BaseException as exc:  # handed to check(), which raises it where it always did
            future.set_exception(exc)

    cx.notes["scrape_view"] = future
    threading.Thread(target=run, daemon=True).start()


def _scrape_view(cx: CheckContext) -> tuple[Reply, CheckResult | None]:
    """Prometheus ready, then its scrape interval and its targets' outcome after the latest change."""
    base = cx.url("prometheus", "web")
    ready = http_get(base + "/-/ready", timeout=2)
    if not ready.ok:
        return ready, None
    config = http_get(base + "/api/v1/status/config", timeout=2)
    if config.ok:
        glob = (yaml.safe_load(config.json()["data"]["yaml"]) or {}).get("global", {})
        cx.scrape_interval = prometheus_duration(str(glob.get("scrape_interval", "")), cx.scrape_interval)
    return ready, _targets(cx)


def check(cx: CheckContext) -> list[CheckResult]:
    base = cx.url("prometheus", "web")
    view = cx.notes.pop("scrape_view", None)
    ready, targets_seen = view.result() if view is not None else _scrape_view(cx)
    if not ready.ok or targets_seen is None:
        return [
            CheckResult(
                3,
                "prometheus ready",
                False,
                [ready.describe()],
                cause="Prometheus does not answer: storage is down, nothing is scraped or stored "
                "(the Collector keeps its counters, so nothing is lost once it is back)",
                hint="`labctl status`; `labctl logs prometheus`; start it again",
                playbook="prometheus-down",
            )
        ]
    results = [CheckResult(3, "prometheus ready", True, [f"{base}/-/ready: {ready.body.strip()[:60]}"])]
    targets = targets_seen
    marker = _marker(cx, targets)
    if not marker.ok and targets.ok and cx.reached.get("collector"):
        # The marker waited for up to two scrapes: a scrape hop that broke just before the check (the
        # targets still showed the last good scrape) shows only now. Name that cause, not a lost series.
        again = _targets(cx)
        if not again.ok:
            targets = again
            marker = CheckResult(
                3,
                marker.name,
                False,
                marker.evidence,
                cause=again.cause,
                hint=again.hint,
                playbook=again.playbook,
            )
    results += [targets, marker]
    results.append(_rules_and_alerts(cx))
    return results


def _targets(cx: CheckContext) -> CheckResult:
    base = cx.url("prometheus", "web")
    url = base + "/api/v1/targets"
    active: list[Target] = []

    def known() -> bool:
        seen = scrape_targets.read(base)
        if seen is not None:
            active[:] = seen
        return bool(active) and all(t.health != "unknown" for t in active)

    def by_url(urls: set[str] | dict[str, float]) -> list[Target]:
        return [t for t in active if t.scrape_url in urls]

    # A target is "unknown" until its first scrape: at most one interval.
    wait_for(known, timeout=cx.scrape_interval + 1)
    # A target still "up" whose next scrape is overdue has a scrape in progress that takes longer than
    # its interval (a hop that just started to hang): its health is stale. Wait for that scrape's outcome,
    # at most its timeout, instead of reporting "up" from before.
    stalled = [t for t in active if t.overdue(cx.scrape_interval)]
    changed_at = _last_change(cx)
    stale = {t.scrape_url for t in _mine(cx, active) if not t.scraped_since(changed_at)}
    probes = scrape_probe.for_check(cx)
    if stalled or stale:
        # Should a scrape time out, a timed probe must tell slow from cut: start it now for each of the
        # lab's targets, beside the waits below (new connections, made after the change), not after them.
        mine = _mine(cx, active)
        probes.start([t.scrape_url for t in mine], scrape_probe.budget(cx, mine))
    if stalled:
        cx.progress(f"a scrape of {stalled[0].scrape_url} is taking longer than its interval; waiting for it")
        limit = max(t.timeout_s(cx.scrape_interval) for t in stalled)
        wait_for(
            lambda: known() and not any(t.overdue(cx.scrape_interval) for t in active), timeout=limit + 1
        )
    # A target last scraped before the lab's latest change (a `labctl break` or `labctl heal`) shows the
    # state from before it: its next scrape (at most one interval and one timeout away) tells. Neither
    # break nor heal waits for that scrape; check does, for every target, up or down, so that two targets
    # of one hop never read differently only because one was scraped a moment earlier.
    stale = {t.scrape_url for t in _mine(cx, active) if not t.scraped_since(changed_at)}
    if stale:
        cx.progress(
            f"{', '.join(sorted(stale))} was last scraped before the lab's latest change; waiting for "
            f"its next scrape (every {cx.scrape_interval:g}s)"
        )
        limit = cx.scrape_interval + max(t.timeout_s(cx.scrape_interval) for t in by_url(stale))
        wait_for(
            lambda: known() and all(t.scraped_since(changed_at) for t in by_url(stale)),
            timeout=limit + 1,
        )
    # A scrape that began just after the change may have gone out on a connection opened before it (HTTP
    # keep-alive to an address that has just left the network) and timed out where every later one is
    # refused. Its outcome is not yet the hop's: wait for the scrape after it.
    window = cx.scrape_interval + max((t.timeout_s(cx.scrape_interval) for t in active), default=0.0)
    early = {
        t.scrape_url: t.last_scrape or 0.0
        for t in _mine(cx, active)
        if t.health == "down" and t.timed_out and (t.last_scrape or 0.0) < changed_at + window
    }
    if early:
        cx.progress(f"the first scrape of {min(early)} after the change timed out; waiting for the next one")

        # The timed probe above (a new connection) settles it sooner: only a new connection that is
        # refused or answers within the timeout makes the next scrape read differently. One that got
        # nothing back for longer than the timeout (a hop that hangs, or one slower than the timeout)
        # or whose name does not resolve means the next scrape times out as well.
        def settled(t: Target) -> bool:
            if (t.last_scrape or 0.0) > early[t.scrape_url]:
                return True
            timeout = t.timeout_s(cx.scrape_interval)
            outcome = probes.done(t.scrape_url)
            if outcome is None:
                return probes.silent_for(t.scrape_url) > timeout
            seen, seconds = outcome
            return scrape_probe.hangs(outcome) or seen == "dns" or (seen == "answers" and seconds > timeout)

        wait_for(lambda: known() and all(settled(t) for t in by_url(early)), timeout=window + 1)
    mine = _mine(cx, active)
    down = scrape_targets.down(mine)
    evidence = [
        f"{t.job} {t.scrape_url}{_via(t)}: {t.health}"
        + (f" in {t.last_duration * 1000:.0f} ms" if t.last_duration else "")
        + (f" — {t.last_error}" if t.last_error else "")
        for t in mine
    ]
    if not down:
        # Up, but slow: a scrape that takes more than half its timeout is one step from failing.
        slow = [t for t in mine if (t.last_duration or 0) > 0.5 * t.timeout_s(cx.scrape_interval)]
        if slow:
            t = slow[0]
            return CheckResult(
                3,
                "scrape targets",
                True,
                evidence,
                warning=True,
                cause=f"scrapes of {t.job} take {t.last_duration or 0:.1f} s "
                f"of a {t.timeout or '?'} timeout: the hop or the target is slow",
                hint="scrape_duration_seconds over time shows whether it grows",
                playbook="upstream-slow",
            )
        return CheckResult(3, "scrape targets", True, evidence or [f"{url}: no targets"])
    first = down[0]
    down_jobs = " ".join(f"job {t.job}" for t in down)
    err = first.last_error
    playbook = "scrape-target-down"
    refused = "connection refused: nothing listens there" + (
        " (is the scrape relay running? `labctl status`)" if first.relayed else ""
    )
    if first.timed_out:
        # A cut hop and one slower than the timeout look alike to Prometheus: the timed probe tells.
        how, seen_line, is_slow = scrape_probe.explain_timeout(cx, probes, first, refused)
        evidence.append(seen_line)
        if is_slow:
            playbook = "upstream-slow"
    elif "refused" in err:
        how = refused
    elif "404" in err:
        how = (
            f"it answers 404 Not Found: nothing is served at {_path(first.scrape_url)} "
            "(is the scrape path right?)"
        )
    elif first.relayed and "502" in err:
        how = f"the scrape relay cannot reach {first.instance} (HTTP 502 Bad Gateway)"
    else:
        how = err
    return CheckResult(
        3,
        "scrape targets",
        False,
        evidence,
        cause=f"Prometheus cannot scrape {first.job} at {first.scrape_url}{_via(first)}: {how}",
        hint="the Target health page in Prometheus shows the error"
        + (
            " (natively its scrape URL is the lab's scrape relay, the Endpoint column; the "
            "instance label is the Collector's own address)"
            if first.relayed
            else ""
        )
        + "; check the address and the hop",
        playbook=playbook,
        notes=down_jobs,
    )


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path or "/"


def _last_change(cx: CheckContext) -> float:
    """When the lab last changed: the latest heal, or the latest fault put in place (its `since` is
    written once the fault is applied)."""
    times = [float(cx.lab.settings.get("healed_at") or 0.0)]
    times += [entry.since for entry in cx.lab.faults.values()]
    return max(times)


def _mine(cx: CheckContext, active: list[Target]) -> list[Target]:
    """Only the lab's services count: a service the stage does not run is expected to be down."""
    return scrape_targets.of_lab(active, cx.running)


def _via(target: Target) -> str:
    """Natively Prometheus scrapes the Collector through the lab's scrape relay (lab.yaml `native_via`):
    the scrape URL is the relay's, the `instance` label the Collector's own address. Say so where a
    student sees the relay's port."""
    return f" (scrape relay for {target.instance})" if target.relayed else ""


def _marker(cx: CheckContext, targets: CheckResult) -> CheckResult:
    name = "marker stored"
    marker = cx.marker.value if cx.marker else ""
    if not cx.reached.get("collector"):
        return CheckResult(
            3,
            name,
            False,
            ["the marker did not get past the Collector (layer 2)"],
            cause="nothing to store: fix the earlier layer first",
            playbook="series-missing",
        )
    promql = f'count({{lab_marker="{marker}"}})'
    seen: list[str] = []

    def look() -> int:
        try:
            res = query(cx, promql)
        except (PrometheusApiClientException, requests.RequestException) as exc:
            seen[:] = [f"query failed: {exc}"]
            return 0
        return int(float(res[0]["value"][1])) if res else 0

    # The marker appears at the next scrape of the Collector: wait one interval plus the scrape itself.
    cx.progress(f"waiting up to {cx.scrape_interval * 2:.0f}s for the next scrape to pick up the marker")
    # When the Collector's target is down the marker cannot arrive: one look, no waiting.
    collector_down = not targets.ok and "job collector" in (targets.notes or "")
    found: dict[str, Any] = {"count": 0, "scrape_failing": False}

    def settled() -> bool:
        found["count"] = look()
        if not found["count"]:
            # The scrape hop may break while we wait (e.g. just after `labctl break`): stop waiting then,
            # check() names the target's error.
            found["scrape_failing"] = _collector_scrape_failing(cx)
        return bool(found["count"]) or found["scrape_failing"]

    wait_for(settled, timeout=0 if collector_down else cx.scrape_interval * 2 + 1, interval=0.5)
    count = found["count"]
    url = cx.url("prometheus", "web", f"/api/v1/query?query={promql}")
    if count:
        cx.reached["prometheus"] = True
        return CheckResult(3, name, True, [f"{count} series with lab_marker={marker} ({url})"])
    if not targets.ok:
        return CheckResult(
            3,
            name,
            False,
            [*seen, f"0 series for {promql}"],
            cause=targets.cause,
            hint=targets.hint,
            playbook=targets.playbook,
        )
    return CheckResult(
        3,
        name,
        False,
        [*seen, f"0 series for {promql} after {cx.scrape_interval * 2 + 1:.0f}s"],
        cause="Prometheus scrapes the Collector but has no marker series: the series is dropped or "
        "renamed on the way (relabeling, translation, expiration)",
        playbook="series-missing",
    )


def _collector_scrape_failing(cx: CheckContext) -> bool:
    """Prometheus' last scrape of the Collector's exporter failed (a scrape that is only overdue may still
    succeed, late: a slow hop, not a cut one)."""
    targets = scrape_targets.read(cx.url("prometheus", "web")) or []
    return any(t.job == "collector" and t.health == "down" for t in targets)


def _rules_and_alerts(cx: CheckContext) -> CheckResult:
    name = "alert rules & alerts"
    rules = http_get(cx.url("prometheus", "web", "/api/v1/rules?type=alert"), timeout=2)
    alerts = http_get(cx.url("prometheus", "web", "/api/v1/alerts"), timeout=2)
    if not rules.ok or not alerts.ok:
        return CheckResult(
            3,
            name,
            False,
            [rules.describe(), alerts.describe()],
            cause="Prometheus' rules API does not answer",
            playbook="alert-rules-missing",
        )
    groups = rules.json()["data"]["groups"]
    pipeline = [g for g in groups if g["name"] == PIPELINE_GROUP]
    count = sum(len(g["rules"]) for g in pipeline)
    evidence = [f"{count} pipeline-health alert rules loaded (group {PIPELINE_GROUP})"]
    broken = [r["name"] for g in groups for r in g["rules"] if r.get("health") == "err"]
    # The check's own test notification (lab/prometheus/rules/lab-check.yml) is not news about the lab.
    shown = [a for a in alerts.json()["data"]["alerts"] if a["labels"].get("alertname") != CHECK_ALERT]
    firing = [a for a in shown if a["state"] == "firing"]
    pending = [a for a in shown if a["state"] == "pending"]
    by_rule = {r["name"]: {**r, "interval": g.get("interval")} for g in groups for r in g["rules"]}
    cx.notes["firing"] = [{**a, "rule": by_rule.get(a["labels"]["alertname"], {})} for a in firing]
    healed_setting = cx.lab.settings.get("healed_at")
    healed_at = float(healed_setting) if healed_setting else None
    for a in firing:
        labels = a["labels"]
        what = labels.get("job") or labels.get("exporter") or labels.get("signal") or ""
        # Clean slate: an alert whose condition began before the latest heal belongs to an earlier fault.
        earlier = healed_at and (scrape_targets.timestamp(a.get("activeAt")) or 0) < healed_at
        evidence.append(
            f"FIRING {labels['alertname']} {what} ({fired_at(a, by_rule.get(labels['alertname'], {}))})"
            + (
                f" — began before the heal at {_iso(healed_at or 0.0)}: from an earlier fault"
                if earlier
                else ""
            )
        )
    if pending:
        evidence.append("pending: " + ", ".join(sorted({a["labels"]["alertname"] for a in pending})))
    if not firing:
        evidence.append("no alerts firing")
    info = http_get(cx.url("prometheus", "web", "/api/v1/status/runtimeinfo"), timeout=2)
    runtime = info.json().get("data", {}) if info.ok else {}
    if runtime.get("reloadConfigSuccess") is False:
        evidence.append(
            f"/api/v1/status/runtimeinfo: reloadConfigSuccess false (configuration in effect since "
            f"{runtime.get('lastConfigTime', '?')})"
        )
        evidence += [f"log: {x}" for x in _reload_errors(cx)]
        return CheckResult(
            3,
            name,
            False,
            evidence,
            cause="Prometheus' last configuration reload failed: it still runs the rules and scrape "
            "configuration it loaded before, not what is in the files now",
            hint="`labctl logs prometheus` names the file and line; promtool check rules / config",
            playbook="alert-rules-missing",
        )
    if not pipeline or broken:
        return CheckResult(
            3,
            name,
            False,
            evidence + [f"rules in error: {', '.join(broken)}"] * bool(broken),
            cause="the pipeline-health alert rules are not loaded (or fail to evaluate): "
            "faults would go unnoticed",
            hint="check rules/ beside prometheus.yml (promtool check rules)",
            playbook="alert-rules-missing",
        )
    # Firing pipeline alerts make this row a warning (not a failure): the failing hop, if any, fails its
    # own row; after a heal an alert keeps firing until its rule is next evaluated (or its window passes).
    mine = [
        a for a in firing if a["labels"]["alertname"] in {r["name"] for g in pipeline for r in g["rules"]}
    ]
    return CheckResult(
        3,
        name,
        True,
        evidence,
        warning=bool(mine),
        cause=f"{len(mine)} pipeline-health alert(s) firing" if mine else None,
        hint="see `labctl check`'s note on when they resolve" if mine else None,
        playbook="pipeline-alert-firing" if mine else None,
    )


def _reload_errors(cx: CheckContext) -> list[str]:
    """Prometheus' own words on why the reload failed (its log, natively; Docker: `labctl logs`)."""
    from labctl.runtimes.process import tail

    text = tail(cx.lab.log_path("prometheus"), 60)
    errors = [x for x in text.splitlines() if "level=error" in x.lower()]
    # The line that names the file and the line number comes first in a failed reload's batch.
    specific = [x for x in errors[-3:] if "rule" in x.lower() or "parse" in x.lower()] or errors[-1:]
    return [x[x.find("msg=") :][:320] if "msg=" in x else x[-320:] for x in specific[:1]]


def _iso(ts: float) -> str:
    return time.strftime("%H:%M:%SZ", time.gmtime(ts))


def fired_at(alert: dict[str, Any], rule: dict[str, Any]) -> str:
    """Prometheus' activeAt is when the condition became true (pending); it fires `for:` later."""
    active = scrape_targets.timestamp(alert.get("activeAt"))
    if active is None:
        return "active since ?"
    hold = float(rule.get("duration") or 0)
    if not hold:
        return f"firing since {_iso(active)}"
    return f"condition true since {_iso(active)}, firing since {_iso(active + hold)} (for: {hold:g}s)"


_RANGE = re.compile(r"\[(\d+[smhd])\]")


def resolve_note(alert: dict[str, Any]) -> str:
    """When a still-firing alert will resolve, from its own rule (range window or plain condition)."""
    rule = alert.get("rule") or {}
    name = alert["labels"]["alertname"]
    expr = " ".join(str(rule.get("query", "")).split())
    interval = float(rule.get("interval") or 5)
    windows = _RANGE.findall(expr)
    if windows:
        longest = max(windows, key=lambda w: prometheus_duration(w, 0))
        return (
            f"{name} (`{expr[:80]}`) looks back {longest}: it resolves once that window no longer "
            f"covers the outage, i.e. up to {longest} after the fix"
        )
    return (
        f"{name} (`{expr[:80]}`) is still resolving: its condition is re-checked every {interval:g}s, so "
        f"it resolves at the next evaluation(s) once the condition is false"
    )
