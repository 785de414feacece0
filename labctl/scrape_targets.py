"""Prometheus' scrape targets (GET /api/v1/targets), read once and typed: check, heal, reload and the
matrix all ask "is that target up, and when was it last scraped?" through this module.

`read` never raises for an unreachable or half-started Prometheus: it answers None, and the caller
decides whether that is a failure or "not yet".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from labctl.units import prometheus_duration


@dataclass(frozen=True)
class Target:
    job: str
    scrape_url: str
    health: str  # up, down or unknown (not scraped yet)
    labels: dict[str, str] = field(default_factory=dict)
    last_scrape: float | None = None  # epoch seconds; None before the first scrape
    last_error: str = ""
    last_duration: float | None = None  # seconds the last scrape took
    interval: str = ""  # as Prometheus reports them ("5s"): see seconds()
    timeout: str = ""

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Target:
        labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
        return cls(
            job=labels.get("job", str(raw.get("scrapePool", ""))),
            scrape_url=str(raw.get("scrapeUrl", "")),
            health=str(raw.get("health", "unknown")),
            labels=labels,
            last_scrape=timestamp(raw.get("lastScrape")),
            last_error=str(raw.get("lastError") or ""),
            last_duration=float(raw["lastScrapeDuration"]) if raw.get("lastScrapeDuration") else None,
            interval=str(raw.get("scrapeInterval", "")),
            timeout=str(raw.get("scrapeTimeout", "")),
        )

    @property
    def service(self) -> str:
        """The lab service behind the target: its `service` label (lab/prometheus), else its job."""
        return self.labels.get("service", self.job)

    @property
    def instance(self) -> str:
        return self.labels.get("instance", "")

    @property
    def relayed(self) -> bool:
        """Scraped through another address than its `instance` (natively: the lab's scrape relay)."""
        return bool(self.instance) and f"//{self.instance}/" not in self.scrape_url

    @property
    def timed_out(self) -> bool:
        return "deadline" in self.last_error or "timeout" in self.last_error

    def interval_s(self, default: float) -> float:
        return prometheus_duration(self.interval, default)

    def timeout_s(self, default: float) -> float:
        return prometheus_duration(self.timeout, default)

    def scraped_since(self, moment: float) -> bool:
        return (self.last_scrape or 0.0) >= moment

    def overdue(self, default_interval: float, now: float | None = None) -> bool:
        """Still "up" but its next scrape is late: a scrape in progress takes longer than its interval."""
        if self.health != "up" or self.last_scrape is None:
            return False
        return (now or time.time()) - self.last_scrape > self.interval_s(default_interval) + 1.0


def timestamp(text: Any) -> float | None:
    """An RFC 3339 time from the Prometheus API as epoch seconds; None for none or the zero time."""
    if not text or str(text).startswith("0001"):
        return None
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def read(base_url: str, timeout: float = 2.0) -> list[Target] | None:
    """The active targets of the Prometheus at `base_url`; None when it does not answer with them."""
    from labctl.runtimes.base import http_json  # the standard library's client: a heal reads this

    answer = http_json(base_url + "/api/v1/targets?state=active", timeout=timeout)
    if answer is None or answer[0] != 200:
        return None
    try:
        return [Target.parse(t) for t in answer[1]["data"]["activeTargets"]]
    except (ValueError, KeyError, TypeError):
        return None


def of_lab(targets: list[Target], running: list[str]) -> list[Target]:
    """Only the lab's running services count (a service the stage does not run is expected to be
    down), and Prometheus' own target."""
    return [t for t in targets if t.service in running or t.job == "prometheus"]


def down(targets: list[Target]) -> list[Target]:
    """The targets whose last scrape failed, sorted by job: Prometheus lists targets in no fixed order,
    and callers name the first one."""
    return sorted((t for t in targets if t.health == "down"), key=lambda t: t.job)
