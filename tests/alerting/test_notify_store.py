"""The notify-receiver's record of Alertmanager's webhook calls: parsing, redaction, persistence, the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.notify.server import notification_count, render
from labctl.notify.store import BadNotification, Store, parse

PAYLOAD = {
    "version": "4",
    "status": "firing",
    "receiver": "lab-notifications",
    "groupKey": '{}:{alertname="LabScrapeTargetDown"}',
    "groupLabels": {"alertname": "LabScrapeTargetDown"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "LabScrapeTargetDown", "job": "collector", "api_key": "sk-live-123"},
            "annotations": {"summary": "<b>down</b>", "description": "sent with Bearer abcdef123456"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "f1",
        }
    ],
}


def test_a_notification_keeps_status_and_labels_and_redacts_secrets() -> None:
    record = parse(PAYLOAD)
    (alert,) = record["alerts"]
    assert record["status"] == "firing" and record["receiver"] == "lab-notifications"
    assert alert["labels"]["job"] == "collector" and alert["fingerprint"] == "f1"
    assert alert["labels"]["api_key"] == "[REDACTED]"
    assert "abcdef123456" not in alert["annotations"]["description"]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ([1, 2], "JSON object"),
        ({"status": "firing"}, "no 'alerts' list"),
        ({"alerts": [{"status": "burning"}]}, "alerts[0] needs a status"),
        ({"alerts": [{"status": "firing", "labels": ["a"]}]}, "alerts[0].labels must be an object"),
    ],
)
def test_what_is_not_alertmanagers_payload_is_refused_with_the_reason(body: object, said: str) -> None:
    with pytest.raises(BadNotification, match=said.replace("[", r"\[").replace("]", r"\]")):
        parse(body)


def test_the_history_survives_a_restart_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    store = Store(path)
    store.add(parse(PAYLOAD))
    resolved = {**PAYLOAD, "status": "resolved", "alerts": [{**PAYLOAD["alerts"][0], "status": "resolved"}]}
    store.add(parse(resolved))
    with path.open("a") as out:
        out.write('{"seq": 3, "rece')  # a crash in the middle of a write
    again = Store(path)
    assert [i["seq"] for i in again.since(0)] == [1, 2] and again.seq == 2
    assert again.add(parse(PAYLOAD))["seq"] == 3, "numbering continues"
    assert notification_count(again.since(0), "resolved", alertname="LabScrapeTargetDown") == 1
    assert again.current()["f1"]["status"] == "firing"
    assert "sk-live-123" not in path.read_text()


def test_the_page_escapes_what_alerts_carry() -> None:
    store = Store(None)
    store.add(parse(PAYLOAD))
    page = render(store)
    assert "&lt;b&gt;down&lt;/b&gt;" in page and "<b>down</b>" not in page
    assert "job=collector" in page and "1 alert(s) firing" in page
