"""What the receiver got: every notification, appended to a JSONL file so a restart keeps the history.

One record per webhook call (Alertmanager sends one per alert group per flush), with each alert's status,
labels and annotations. Secrets never land on disk: a label or annotation named like a credential is
replaced, and bearer/basic credentials inside free text are scrubbed (labctl.redact).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from labctl.redact import _SECRET_HINTS, REDACTED, Redactor

KEEP = 1000  # notifications kept in memory and served; the file keeps them all
_redactor = Redactor()


class BadNotification(ValueError):
    """A webhook body that is not Alertmanager's: the message names what is wrong."""


def _clean(pairs: Any, what: str) -> dict[str, str]:
    if pairs is None:
        return {}
    if not isinstance(pairs, dict):
        raise BadNotification(f"{what} must be an object of name: value, got {type(pairs).__name__}")
    out: dict[str, str] = {}
    for key, value in pairs.items():
        name = str(key)
        secret = any(hint in name.lower() for hint in _SECRET_HINTS)
        out[name] = REDACTED if secret else _redactor.text(str(value))
    return out


def parse(body: Any) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) -> the record the view keeps; BadNotification if not."""
    if not isinstance(body, dict):
        raise BadNotification("the body must be a JSON object (Alertmanager's webhook payload)")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BadNotification("the payload has no 'alerts' list: is this Alertmanager's webhook?")
    kept = []
    for num, alert in enumerate(alerts):
        if not isinstance(alert, dict) or alert.get("status") not in ("firing", "resolved"):
            raise BadNotification(f"alerts[{num}] needs a status of 'firing' or 'resolved'")
        kept.append(
            {
                "status": alert["status"],
                "labels": _clean(alert.get("labels"), f"alerts[{num}].labels"),
                "annotations": _clean(alert.get("annotations"), f"alerts[{num}].annotations"),
                "starts_at": str(alert.get("startsAt", "")),
                "ends_at": str(alert.get("endsAt", "")),
                "fingerprint": str(alert.get("fingerprint", "")),
            }
        )
    status = body.get("status")
    return {
        "status": status if status in ("firing", "resolved") else kept[0]["status"],
        "receiver": str(body.get("receiver", "")),
        "group_key": _redactor.text(str(body.get("groupKey", ""))),
        "group_labels": _clean(body.get("groupLabels"), "groupLabels"),
        "alerts": kept,
    }


class Store:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.items: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.seq = 0
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash: the rest still counts
                if isinstance(item, dict) and isinstance(item.get("seq"), int):
                    self.items.append(item)
                    self.seq = max(self.seq, item["seq"])

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.seq += 1
            item = {"seq": self.seq, "received_at": round(time.time(), 3), **record}
            self.items.append(item)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(item, separators=(",", ":")) + "\n")
            return item

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [item for item in self.items if item["seq"] > seq]

    def current(self) -> dict[str, dict[str, Any]]:
        """Each alert's latest notified state, by fingerprint (or its labels when it has none)."""
        latest: dict[str, dict[str, Any]] = {}
        for item in self.since(0):
            for alert in item["alerts"]:
                key = alert["fingerprint"] or json.dumps(alert["labels"], sort_keys=True)
                latest[key] = {**alert, "notified_at": item["received_at"], "receiver": item["receiver"]}
        return latest
