"""Alerting on real processes: a native module-4 lab (proxy, Collector, Prometheus, Alertmanager, the
notify-receiver and their relays), one lab for the whole file.

- A fault makes a lab alert fire; it reaches the receiver as firing, and after heal as resolved.
- A receiver that is down loses nothing: Alertmanager fails, retries, and delivers once it is back.
- Each alerting hop, cut with `labctl break network --hop …`, fails `labctl check`'s test notification
  with that hop's playbook; after heal the check is green again.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from labctl.notify.server import notification_count
from labctl.runtimes import process
from tests.conftest import started_lab, wait_for
from tests.faults import live

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Lab(live.Lab):
    cli_timeout = 180.0  # a check waits for the test notification as well

    def url(self, service: str) -> str:
        return self.state.url(service, "web")

    def notifications(self) -> list[dict[str, Any]]:
        resp = requests.get(self.url("notify-receiver") + "/api/notifications", timeout=3)
        resp.raise_for_status()
        return list(resp.json()["notifications"])

    def webhook_failures(self) -> float:
        text = requests.get(self.url("alertmanager") + "/metrics", timeout=3).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("alertmanager_notifications_failed_total") and 'integration="webhook"' in line
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    state_dir = tmp_path_factory.mktemp("alerting") / "lab"
    with started_lab("module-4", state_dir):
        yield Lab(state_dir)


def test_module_4_runs_alertmanager_and_the_receiver_and_prometheus_sends_to_it(lab: Lab) -> None:
    status = json.loads(lab.cli("status", "--json").stdout)
    rows = {s["service"]: (s["state"], s["health"]) for s in status["services"]}
    for service in ("alertmanager", "notify-receiver", "alert-relay", "notify-relay"):
        assert rows[service] == ("running", "healthy"), rows
    # Prometheus sends to the alert relay (the prometheus-alertmanager hop), never straight to Alertmanager.
    active = requests.get(lab.url("prometheus") + "/api/v1/alertmanagers", timeout=3).json()["data"]
    relay = lab.state.addr("alert-relay", "alertmanager_web")
    assert [a["url"] for a in active["activeAlertmanagers"]] == [f"http://{relay}/api/v2/alerts"]
    ports = lab.cli("ports", "--json").stdout
    assert str(lab.state.port("alertmanager", "web")) in ports and "notify-receiver" in ports


def test_a_fault_fires_an_alert_that_reaches_the_receiver_then_resolves_after_heal(lab: Lab) -> None:
    lab.cli("break", "network", "--hop", "collector-prometheus", "--mode", "refuse")
    try:

        def fired() -> list[dict[str, Any]]:
            return [
                a
                for item in lab.notifications()
                for a in item["alerts"]
                if a["status"] == "firing"
                and a["labels"].get("alertname") == "LabScrapeTargetDown"
                and a["labels"].get("job") == "collector"
            ]

        (alert, *_) = wait_for("LabScrapeTargetDown firing at the receiver", fired, timeout=90)
        assert alert["labels"]["severity"] == "critical" and alert["annotations"]["summary"]
    finally:
        lab.cli("heal")

    def resolved() -> bool:
        return any(
            a["status"] == "resolved" and a["fingerprint"] == alert["fingerprint"]
            for item in lab.notifications()
            for a in item["alerts"]
        )

    wait_for("LabScrapeTargetDown resolved at the receiver", resolved, timeout=90)
    # The page shows both states with the alert's labels.
    page = requests.get(lab.url("notify-receiver") + "/", timeout=3).text
    assert "LabScrapeTargetDown" in page and ">resolved<" in page and ">firing<" in page


def test_a_receiver_that_is_down_loses_no_notification(lab: Lab) -> None:
    before = lab.notifications()
    failures = lab.webhook_failures()
    rec = process.read_record(lab.state.pid_path("notify-receiver"))
    assert rec is not None and process.send_signal(rec, signal.SIGKILL)
    wait_for("the receiver to be gone", lambda: not rec.alive(), timeout=10, interval=0.2)

    name = f"LabOutage{secrets.token_hex(3)}"
    alert = {
        "labels": {"alertname": name, "severity": "warning", "layer": "4"},
        "annotations": {"summary": "x"},
    }
    resp = requests.post(lab.url("alertmanager") + "/api/v2/alerts", json=[alert], timeout=3)
    assert resp.status_code == 200, resp.text
    # Alertmanager tries (group_wait 5s) and fails: the receiver is down.
    wait_for("a failed webhook delivery", lambda: lab.webhook_failures() > failures, timeout=30, interval=0.5)

    lab.cli("up", "module-4")  # starts what is missing: the receiver, with its history
    got = wait_for(
        f"{name} delivered after the receiver came back",
        lambda: notification_count(lab.notifications(), "firing", alertname=name),
        timeout=60,
    )
    assert got == 1, "delivered exactly once"
    after = lab.notifications()
    assert [i["seq"] for i in after[: len(before)]] == [i["seq"] for i in before], "history kept"

    # And its end: an alert Alertmanager is told has ended is notified as resolved.
    ended = {**alert, "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    requests.post(lab.url("alertmanager") + "/api/v2/alerts", json=[ended], timeout=3).raise_for_status()
    wait_for(
        f"{name} resolved",
        lambda: notification_count(lab.notifications(), "resolved", alertname=name),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("hop", "playbook"),
    [
        ("prometheus-alertmanager", "alertmanager-unreachable"),
        ("alertmanager-receiver", "notification-undelivered"),
    ],
)
def test_each_alerting_hop_cut_fails_the_test_notification_and_heals(
    lab: Lab, hop: str, playbook: str
) -> None:
    lab.cli("break", "network", "--hop", hop)
    try:
        res = lab.cli("check", "--layer", "4", "--json", check=False)
        report = json.loads(res.stdout)
        assert res.returncode == 14, res.stdout + res.stderr
        (row,) = [r for r in report["results"] if r["name"] == "test notification"]
        assert row["verdict"] == "FAIL" and row["playbook"] == playbook, row
        # The cause names the hop that is cut (the check asks each side, not just "no notification").
        assert f"(the {hop.replace('-', ' → ')} hop)" in row["cause"], row
    finally:
        lab.cli("heal")
    res = lab.cli("check", "--layer", "4", "--json", check=False)
    report = json.loads(res.stdout)
    (row,) = [r for r in report["results"] if r["name"] == "test notification"]
    assert res.returncode == 0 and row["verdict"] == "ok", res.stdout + res.stderr


def test_the_receiver_refuses_bad_input_and_keeps_serving(lab: Lab) -> None:
    url = lab.url("notify-receiver")
    for body in (b"not json", b'{"alerts": "nope"}', b"[]"):
        resp = requests.post(url + "/api/alerts", data=body, timeout=3)
        assert resp.status_code == 400 and resp.json()["error"], body
    assert requests.get(url + "/healthz", timeout=3).ok
    # A Host header that is not the lab's (DNS rebinding) is refused before any route runs.
    assert (
        requests.get(url + "/api/notifications", headers={"Host": "evil.example"}, timeout=3).status_code
        == 421
    )
