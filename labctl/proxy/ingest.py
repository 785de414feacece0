"""What happens to one decoded export request, whichever receiver it came through.

count → room check → contract (observe or enforce) → inspection → durable spool → answer.
The spool write happens before the answer, so an OK means the data is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from labctl.errors import LabError
from labctl.otlp.signals import Signal
from labctl.proxy.spool import Spool, SpoolFull
from labctl.proxy.stats import Stats
from labctl.redact import Redactor

log = logging.getLogger("labctl.proxy")

_REDACT = Redactor()  # the default rules; the inspector adds the config's own before storing


def safe_headers(headers: Any) -> dict[str, str]:
    """Request headers for the inspection record with anything credential-like replaced, never logged."""
    kept = {
        str(k).lower(): str(v)[:200]
        for k, v in headers.items()
        if not str(k).startswith(":") and not str(k).lower().endswith("-bin")
    }
    return _REDACT.header_map(kept)


class Busy(Exception):
    """The proxy cannot take more now: the client should retry after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.message = message


@dataclass
class Answer:
    rejected: int = 0
    message: str = ""


class ContractHolder:
    """The current contract, replaced atomically when its file changes (in-flight requests keep theirs)."""

    def __init__(
        self,
        path: Path | None,
        loader: Callable[[Path], Any] | None,
        on_change: Callable[[Any], None] | None = None,
    ) -> None:
        self.path = path
        self.loader = loader
        self.on_change = on_change
        self.current: Any = None
        self.version = 0
        self.last_error = ""
        self._stamp: tuple[int, int, int] | None = None
        if path is not None and loader is not None:
            self._stamp = self._stat()
            self.current = loader(path)  # a broken contract at start is the user's error: LabError
            self.version = 1

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def replace(self, path: Path | None, contract: Any, quiet: bool = False) -> None:
        """Another contract file (proxy.yaml's contract.path changed, or PUT /api/contract): already loaded
        by the caller. quiet: a hidden fault switched it, so the log does not announce it."""
        self.path = path
        self._stamp = self._stat() if path is not None else None
        self.current, self.version, self.last_error = contract, self.version + 1, ""
        if self.on_change is not None and contract is not None:
            self.on_change(contract)
        (log.debug if quiet else log.info)("contract switched to %s (version %d)", path, self.version)

    async def watch(self, interval: float = 1.0) -> None:
        """Poll the file; a broken edit keeps the previous contract and is reported, never fatal."""
        if self.path is None or self.loader is None:
            return
        while True:
            await asyncio.sleep(interval)
            stamp = self._stat()
            if stamp is None or stamp == self._stamp:
                continue
            await asyncio.sleep(0.1)  # let an editor finish writing before reading a half-written file
            if self._stat() != stamp:
                continue
            self._stamp = stamp
            try:
                new = await asyncio.to_thread(self.loader, self.path)
            except LabError as exc:
                self.last_error = exc.message
                log.error(
                    "contract %s changed but does not load, keeping version %d: %s",
                    self.path,
                    self.version,
                    exc.message,
                )
                continue
            except Exception as exc:  # a bug in the loader must not stop the proxy
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "contract %s changed but loading it failed, keeping version %d", self.path, self.version
                )
                continue
            self.current, self.version, self.last_error = new, self.version + 1, ""
            if self.on_change is not None:
                self.on_change(new)
            log.info("contract %s reloaded (version %d)", self.path, self.version)


class Ingest:
    def __init__(
        self,
        *,
        mode: str,
        stats: Stats,
        spool: Spool | None,
        contract: ContractHolder,
        inspector: Any,
        retry_after: float,
    ) -> None:
        self.mode = mode
        self.stats = stats
        self.spool = spool
        self.contract = contract
        self.inspector = inspector
        self.retry_after = retry_after
        self._inspect_failures = 0

    def _observe(self, name: str, ev: Any, meta: dict[str, Any]) -> None:
        try:
            self.inspector.observe(name, ev, meta)
        except Exception:
            self._inspect_failures += 1
            if self._inspect_failures == 1:
                log.exception("inspecting a %s request failed; the data itself was accepted", name)

    def handle(self, signal: Signal, msg: Message, raw: bytes | None, meta: dict[str, Any]) -> Answer:
        name = signal.name
        if self.spool is not None and not self.spool.has_room():
            n = signal.count(msg)
            self.stats.received[name] += n
            self.stats.rejected[(name, "spool_full")] += n
            self.stats.requests[(name, "spool_full")] += 1
            raise Busy(
                self.retry_after,
                "the proxy's spool is full because the upstream is not taking data; "
                f"retry after {self.retry_after:g}s",
            )
        rejected, message, forward = 0, "", msg
        n = -1  # the items: the evaluation counts them, else protobuf's objects are walked for it
        contract = self.contract.current
        if contract is not None:
            try:
                ev = contract.evaluate(name, msg, raw)
                n = ev.total
                if self.inspector is not None:
                    self._observe(name, ev, meta)
                if ev.rejected:
                    if self.mode == "enforce":
                        rejected, message = ev.rejected, ev.message
                        forward = ev.filtered_request()
                        raw = None
                    else:
                        message = (
                            f"observe mode: {ev.rejected} {signal.item_noun} violate the contract "
                            f"(accepted anyway): {ev.message}"
                        )
            except Exception:
                # Inspection must never cost data: accept and forward as is, and say so loudly once.
                self._inspect_failures += 1
                if self._inspect_failures == 1:
                    log.exception("contract evaluation failed; forwarding %s unchecked", name)
        if n < 0:
            n = signal.count(msg)
        self.stats.received[name] += n
        keep = n - rejected
        if self.spool is not None and keep > 0:
            body = raw if raw is not None else forward.SerializeToString()
            try:
                self.spool.append(name, keep, body)
            except SpoolFull:
                self.stats.rejected[(name, "spool_full")] += n
                self.stats.requests[(name, "spool_full")] += 1
                raise Busy(self.retry_after, "the proxy's spool is full; retry later") from None
        self.stats.accepted[name] += keep
        if rejected:
            self.stats.rejected[(name, "contract")] += rejected
        self.stats.requests[(name, "partial" if rejected else "ok")] += 1
        return Answer(rejected, message)
