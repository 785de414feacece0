"""The proxy's own counters, kept by the transport and rendered by the inspection side and /api/stats.

Counters count *items* (data points, log records, spans) per signal, plus requests; rejected and dropped
are split by reason. Gauges (queued, spooled) are read live from the spool when a snapshot is taken.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

SIGNAL_NAMES = ("metrics", "logs", "traces")

# name -> help, for every counter in the snapshot (the /metrics renderer uses these).
COUNTER_HELP = {
    "requests": "Export requests received, by signal and outcome (ok, partial, spool_full, unauthenticated, "
    "unsupported_media_type, unsupported_encoding, too_large, bad_protobuf, bad_json, bad_compression, client_disconnected).",
    "received": "Items (data points, log records, spans) received in decodable requests, by signal.",
    "accepted": "Items acknowledged to the client (stored durably when an upstream is configured).",
    "rejected": "Items in decodable requests that were not acknowledged, by signal and reason (contract: enforce "
    "mode, reported in partial success; spool_full: answered 429 / RESOURCE_EXHAUSTED).",
    "forwarded": "Items the upstream accepted.",
    "dropped": "Acknowledged items given up on, by signal and reason (spool_overflow, upstream_permanent, "
    "upstream_partial). Zero unless the overflow policy is drop_oldest or the upstream refused data.",
    "retries": "Failed upstream attempts that will be retried, by signal and reason.",
}
GAUGE_HELP = {
    "queued": "Items waiting to be forwarded that are also held in the memory queue.",
    "spooled": "Items waiting to be forwarded, stored in the durable spool (includes the queued ones).",
    "spool_bytes": "Bytes of export requests waiting in the durable spool.",
    "spool_max_bytes": "The spool size limit; at the limit the overflow policy applies.",
    "spool_rows": "Export requests waiting in the durable spool.",
    "queue_bytes": "Bytes of unsent export requests also held in memory.",
    "queue_max_bytes": "The memory queue limit; beyond it unsent data is read back from the spool.",
    "spool_full": "1 while the spool is at its limit (overflow policy in effect).",
}


class Stats:
    """Plain dict counters: a few dict lookups per request, nothing per point."""

    def __init__(self) -> None:
        self.started = time.time()
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.received: dict[str, int] = defaultdict(int)
        self.accepted: dict[str, int] = defaultdict(int)
        self.forwarded: dict[str, int] = defaultdict(int)
        self.rejected: dict[tuple[str, str], int] = defaultdict(int)
        self.dropped: dict[tuple[str, str], int] = defaultdict(int)
        self.retries: dict[tuple[str, str], int] = defaultdict(int)

    @staticmethod
    def _by_signal(d: dict[str, int]) -> dict[str, int]:
        return {s: d.get(s, 0) for s in SIGNAL_NAMES}

    @staticmethod
    def _by_reason(d: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {s: {} for s in SIGNAL_NAMES}
        for (signal, reason), n in sorted(d.items()):
            out.setdefault(signal, {})[reason] = n
        return out

    def counters(self) -> dict[str, Any]:
        return {
            "requests": self._by_reason(self.requests),
            "received": self._by_signal(self.received),
            "accepted": self._by_signal(self.accepted),
            "rejected": self._by_reason(self.rejected),
            "forwarded": self._by_signal(self.forwarded),
            "dropped": self._by_reason(self.dropped),
            "retries": self._by_reason(self.retries),
        }
