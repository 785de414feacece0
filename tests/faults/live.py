"""Helpers for the live fault tests: each fault against a real native lab (proxy, Collector,
Prometheus), the way a student does it:

    send → break → `labctl check` names the layer, cause and playbook → the pipeline alert fires →
    heal → `labctl check` is green → everything the proxy acknowledged reached Prometheus.

One module-scoped lab serves every fault: heal restores the exact previous state, and the test checks
that too (overrides and scrape targets as before). `labctl break`/`heal`/`check` run as the real CLI.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.checks.marker import send_marker
from labctl.runtimes import process
from labctl.state import LabState
from tests.conftest import run_labctl, started_lab

REPO = Path(__file__).resolve().parents[2]


class Lab:
    """A running lab as the live tests drive it: its state, its CLI, its check and Prometheus."""

    cli_timeout = 120.0

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir

    @property
    def state(self) -> LabState:
        return LabState.load(self.dir)

    def cli(self, *args: str, check: bool = True) -> Any:
        return run_labctl(*args, state_dir=self.dir, check=check, timeout=self.cli_timeout)

    def check(self) -> tuple[int, dict[str, Any]]:
        res = self.cli("check", "--json", check=False)
        assert res.stdout.strip(), res.stderr
        return res.returncode, json.loads(res.stdout)

    def prom(self, path: str, **params: str) -> Any:
        resp = requests.get(self.state.url("prometheus", "web") + path, params=params, timeout=5)
        resp.raise_for_status()
        return resp.json()["data"]

    def sessions_stored(self, marker: str) -> int:
        # max_over_time: a restarted Collector no longer exposes older sessions (their series go stale in
        # Prometheus, still stored); each session is its own series with value 1.
        res = self.prom(
            "/api/v1/query",
            query=f'sum(max_over_time(claude_code_session_count_total{{lab_marker="{marker}"}}[15m]))',
        )
        return int(float(res["result"][0]["value"][1])) if res["result"] else 0

    def firing(self) -> set[str]:
        return {
            a["labels"]["alertname"] for a in self.prom("/api/v1/alerts")["alerts"] if a["state"] == "firing"
        }

    def send(self, marker: str) -> bool:
        """One Claude Code-like session; True when the proxy acknowledged it."""
        return send_marker(self.state.url("proxy", "otlp_grpc"), marker, timeout_s=3).sent_ok


def _poll(what: str, fn: Any, timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def live_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Body of each test module's module-scoped `lab` fixture: one module-3 lab, healed and stopped after."""
    state_dir = tmp_path_factory.mktemp("faults") / "lab"
    with started_lab("module-3", state_dir):
        handle = Lab(state_dir)
        try:
            _poll("a green check on the fresh lab", lambda: _green(handle), timeout=60, interval=0.5)
            yield handle
        finally:
            handle.cli("heal", "--all", check=False)
            for pid_file in (state_dir / "faults").glob("*/*.pid"):  # relays a failed heal may leave
                rec = process.read_record(pid_file)
                if rec is not None:
                    process.terminate([rec], timeout=2)


def _green(lab: Lab) -> tuple[int, dict[str, Any]] | None:
    code, report = lab.check()
    return (code, report) if code == 0 else None


def _snapshot(lab: Lab) -> dict[str, Any]:
    state = lab.state
    targets = state.data_dir("prometheus") / "targets"
    return {
        "overrides": state.overrides,
        "faults": state.faults,
        "targets": {p.name: p.read_text() for p in sorted(targets.glob("*.json"))},
    }


def proxy_stats(lab: Lab) -> dict[str, Any]:
    return requests.get(lab.state.url("proxy", "admin") + "/api/stats", timeout=5).json()  # type: ignore[no-any-return]


def exercise(
    lab: Lab,
    fault: str,
    args: list[str],
    layer: int,
    playbook: str,
    cause: str,
    alert: str | None,
    wait_alert_resolved: bool = False,
    proxy_restarts: bool = False,
    green_at_once: bool = False,
    during: Any = None,
) -> None:
    """`proxy_restarts`: whether the fault may restart the proxy (only the ones that change its env or
    contract); all others keep its counters and history. `green_at_once`: the first check after heal
    must be green (heal waits until the lab is usable). `during(lab, entry)`: extra checks mid-fault."""
    before = _snapshot(lab)
    stats_before = proxy_stats(lab)
    marker = f"loss-{fault}-{secrets.token_hex(3)}"
    acked = int(lab.send(marker))
    assert acked == 1, "the healthy lab must acknowledge a session"
    # Stored before the fault: a Collector restart loses what it accepted but Prometheus has not scraped
    # yet (its prometheus exporter keeps no state) — not the proxy's data to guard any more.
    _poll(
        "the pre-fault session in Prometheus",
        lambda: lab.sessions_stored(marker) == 1,
        timeout=30,
        interval=0.5,
    )

    broke = lab.cli("break", fault, *args, "--json")
    entry = json.loads(broke.stdout)
    assert entry["evidence"], entry
    # Another shell sees the fault.
    active = json.loads(lab.cli("faults", "--json").stdout)
    assert [a["name"] for a in active] == [fault]

    acked += int(lab.send(marker))  # sent during the fault: acknowledged data must survive it
    if during is not None:
        during(lab, entry)

    code, report = lab.check()
    assert code == 10 + layer, json.dumps(report, indent=1)
    assert report["first_failing_layer"] == layer
    failing = [r for r in report["results"] if r["verdict"] == "FAIL" and r["layer"] == layer]
    assert any(r["playbook"] == playbook for r in failing), json.dumps(failing, indent=1)
    assert any(cause in (r["cause"] or "") for r in failing), json.dumps(failing, indent=1)

    if alert:
        _poll(f"alert {alert} to fire", lambda: alert in lab.firing(), timeout=75, interval=0.5)
        # and `labctl check` shows it
        _, report = lab.check()
        shown = [e for r in report["results"] for e in r["evidence"] if f"FIRING {alert}" in e]
        assert shown, json.dumps(report, indent=1)

    healed = lab.cli("heal", fault)
    assert _snapshot(lab) == before, "heal must restore the exact previous state"
    if not proxy_restarts:
        # The same proxy process: its counters and history went on through break and heal.
        after = proxy_stats(lab)
        assert after["uptime_s"] > stats_before["uptime_s"], "the fault must not restart the proxy"
        assert after["counters"]["received"]["metrics"] > stats_before["counters"]["received"]["metrics"]
        assert (
            after["upstream"]["configured"] is True
            and after["upstream"]["endpoint"] == stats_before["upstream"]["endpoint"]
        ), after["upstream"]
    if green_at_once:
        assert "should be green" in healed.stdout, healed.stdout + healed.stderr
        code, report = lab.check()
        assert code == 0, json.dumps(report, indent=1)
    else:  # (a green check just passed: another would only repeat it, 6-9 s)
        _poll("a green check after heal", lambda: _green(lab), timeout=60, interval=0.5)
    _poll(
        f"all {acked} acknowledged sessions in Prometheus",
        lambda: lab.sessions_stored(marker) == acked,
        timeout=45,
    )
    if alert and wait_alert_resolved:
        _poll(f"alert {alert} to resolve", lambda: alert not in lab.firing(), timeout=120, interval=0.5)
