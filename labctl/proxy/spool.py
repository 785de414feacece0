"""The durable spool: every export request the proxy acknowledges is in SQLite (WAL) before the client hears OK.

A bounded memory queue mirrors the newest entries so the forwarder normally never reads the disk; when
the backlog outgrows it (upstream down), the forwarder reads back from SQLite in id order. Entries are
deleted only after the upstream accepted them, so a crash or kill -9 at any point loses nothing that was
acknowledged (at worst a batch in flight at the kill is sent twice: at-least-once).

`synchronous=NORMAL` in WAL mode survives a killed process (the OS keeps the written pages); `sync: full`
also survives power loss at the cost of an fsync per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from labctl.proxy.stats import SIGNAL_NAMES, Stats

log = logging.getLogger("labctl.proxy.spool")


class SpoolFull(Exception):
    """The spool is at its size limit and the overflow policy is `reject`."""


@dataclass(frozen=True)
class Entry:
    id: int
    signal: str
    items: int
    body: bytes


class Spool:
    def __init__(
        self, path: Path, *, max_bytes: int, memory_bytes: int, overflow: str, sync: str, stats: Stats
    ) -> None:
        # The spool holds payloads as received (prompt text included when the client logs it) until the
        # upstream has them: readable by the lab's user only, like the Collector's own queue would be.
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        path.chmod(0o600)
        self.path = path
        self.max_bytes = max_bytes
        self.memory_bytes = memory_bytes
        self.overflow = overflow
        self.stats = stats
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # Before the table exists: lets a drained spool hand its pages back to the file system.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, signal TEXT NOT NULL,"
            " items INTEGER NOT NULL, body BLOB NOT NULL, created REAL NOT NULL)"
        )
        self.pending_rows = 0
        self.pending_bytes = 0
        self.pending_items = dict.fromkeys(SIGNAL_NAMES, 0)
        for signal, rows, items, size in self._db.execute(
            "SELECT signal, COUNT(*), SUM(items), SUM(length(body)) FROM spool GROUP BY signal"
        ):
            self.pending_rows += rows
            self.pending_items[signal] = self.pending_items.get(signal, 0) + int(items or 0)
            self.pending_bytes += int(size or 0)
        self.recovered_rows = self.pending_rows
        self._cache: deque[Entry] = deque()
        self._cache_bytes = 0
        self._cache_items = dict.fromkeys(SIGNAL_NAMES, 0)
        # The cache mirrors *all* pending entries or is bypassed until the backlog drains.
        self._in_sync = self.pending_rows == 0
        self._grown = self.pending_rows > 0  # a backlog worth vacuuming after it drains
        self._inflight_last = 0
        self._nonempty: asyncio.Event | None = None
        self.full = False

    # -- producer side ------------------------------------------------------------------------------

    def has_room(self) -> bool:
        if self.overflow == "drop_oldest" or self.pending_bytes < self.max_bytes:
            return True
        self._set_full(True)
        return False

    def append(self, signal: str, items: int, body: bytes) -> int:
        """Store one export request durably; returns its id. Raises SpoolFull under the reject policy."""
        if not self.has_room():
            self._set_full(True)
            raise SpoolFull(f"spool at its {self.max_bytes}-byte limit")
        cur = self._db.execute(
            "INSERT INTO spool (signal, items, body, created) VALUES (?, ?, ?, ?)",
            (signal, items, body, time.time()),
        )
        entry_id = int(cur.lastrowid or 0)
        self.pending_rows += 1
        self.pending_bytes += len(body)
        self.pending_items[signal] += items
        if self._in_sync:
            if self._cache_bytes + len(body) <= self.memory_bytes:
                self._cache.append(Entry(entry_id, signal, items, body))
                self._cache_bytes += len(body)
                self._cache_items[signal] += items
            else:
                # Memory queue full: from here the forwarder reads the disk until the backlog drains.
                self._drop_cache()
                self._grown = True
        if self.overflow == "drop_oldest" and self.pending_bytes > self.max_bytes:
            self._evict()
        if self._nonempty is not None:
            self._nonempty.set()
        return entry_id

    def _drop_cache(self) -> None:
        self._in_sync = False
        self._cache.clear()
        self._cache_bytes = 0
        self._cache_items = dict.fromkeys(SIGNAL_NAMES, 0)

    def _set_full(self, full: bool) -> None:
        if full and not self.full:
            log.warning(
                "spool FULL (%d bytes, limit %d): overflow policy %s — %s",
                self.pending_bytes,
                self.max_bytes,
                self.overflow,
                "clients get 429 / RESOURCE_EXHAUSTED and retry"
                if self.overflow == "reject"
                else "the OLDEST unsent data is dropped and counted in dropped{reason=spool_overflow}",
            )
        elif not full and self.full:
            log.info("spool has room again (%d bytes)", self.pending_bytes)
        self.full = full

    def _evict(self) -> None:
        """drop_oldest: delete the oldest entries not in flight until the spool fits, and count them."""
        self._set_full(True)
        evicted: set[int] = set()
        while self.pending_bytes > self.max_bytes:
            rows = self._db.execute(
                "SELECT id, signal, items, length(body) FROM spool WHERE id > ? ORDER BY id LIMIT 64",
                (self._inflight_last,),
            ).fetchall()
            if len(rows) <= 1:
                break  # never evict the entry just written
            for entry_id, signal, items, size in rows[:-1]:
                self._db.execute("DELETE FROM spool WHERE id = ?", (entry_id,))
                self._forget(signal, items, size)
                evicted.add(entry_id)
                self.stats.dropped[(signal, "spool_overflow")] += items
                if self.pending_bytes <= self.max_bytes:
                    break
        if self._in_sync and evicted:
            kept = [e for e in self._cache if e.id not in evicted]
            self._drop_cache()
            self._in_sync = True
            for e in kept:
                self._cache.append(e)
                self._cache_bytes += len(e.body)
                self._cache_items[e.signal] += e.items

    def _forget(self, signal: str, items: int, size: int) -> None:
        self.pending_rows -= 1
        self.pending_bytes -= size
        self.pending_items[signal] -= items

    # -- consumer side ------------------------------------------------------------------------------

    async def wait(self) -> None:
        """Return when something is pending."""
        if self._nonempty is None:
            self._nonempty = asyncio.Event()
        while self.pending_rows == 0:
            self._nonempty.clear()
            await self._nonempty.wait()

    def peek(self, max_bytes: int) -> list[Entry]:
        """The oldest pending entries of one signal, up to max_bytes (at least one), in id order."""
        if self.pending_rows == 0:
            return []
        batch: list[Entry] = []
        size = 0
        if self._in_sync and self._cache:
            source: list[Entry] | deque[Entry] = self._cache
        else:
            source = [
                Entry(*row)
                for row in self._db.execute("SELECT id, signal, items, body FROM spool ORDER BY id LIMIT 256")
            ]
        for e in source:
            if batch and (e.signal != batch[0].signal or size + len(e.body) > max_bytes):
                break
            batch.append(e)
            size += len(e.body)
        if batch:
            self._inflight_last = batch[-1].id
        return batch

    def remove(self, batch: list[Entry]) -> None:
        """The upstream has the batch (or refused it for good): delete it from disk and memory."""
        if not batch:
            return
        last = batch[-1].id
        self._db.execute("DELETE FROM spool WHERE id <= ?", (last,))
        for e in batch:
            self._forget(e.signal, e.items, len(e.body))
        while self._cache and self._cache[0].id <= last:
            e = self._cache.popleft()
            self._cache_bytes -= len(e.body)
            self._cache_items[e.signal] -= e.items
        self._inflight_last = 0
        if self.pending_rows == 0:
            self._in_sync = True
            if self._grown:
                # A backlog has drained: give the disk space back (cheap when the table is empty).
                self._db.executescript("PRAGMA incremental_vacuum;")  # executescript steps it to the end
                self._grown = False
        if self.full and self.pending_bytes < self.max_bytes:
            self._set_full(False)

    # -- reporting ----------------------------------------------------------------------------------

    def gauges(self) -> dict[str, object]:
        return {
            "queued": dict(self._cache_items),
            "spooled": dict(self.pending_items),
            "spool_bytes": self.pending_bytes,
            "spool_max_bytes": self.max_bytes,
            "spool_rows": self.pending_rows,
            "queue_bytes": self._cache_bytes,
            "queue_max_bytes": self.memory_bytes,
            "spool_full": self.full,
            "overflow_policy": self.overflow,
        }

    def close(self) -> None:
        self._db.close()
