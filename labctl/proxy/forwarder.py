"""The forwarder: drains the spool to the upstream in order, retrying until the upstream takes the data.

One worker keeps order. Consecutive spooled requests of one signal are sent as one request by
concatenating their protobuf bytes (repeated fields concatenate, so this is a valid merged request) —
no re-encoding. If the upstream refuses a merged batch for good, the entries are retried one by one so
one bad request cannot take good ones down with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from labctl.proxy.config import UpstreamSettings
from labctl.proxy.spool import Spool
from labctl.proxy.stats import Stats
from labctl.proxy.upstream import (
    AUTH,
    OK,
    PERMANENT,
    RETRYABLE,
    GrpcSender,
    HttpSender,
    Result,
    safe_endpoint,
)

log = logging.getLogger("labctl.proxy.forwarder")


class Forwarder:
    def __init__(
        self, settings: UpstreamSettings, spool: Spool, stats: Stats, sender: HttpSender | GrpcSender
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.stats = stats
        self.sender = sender
        self.state = "idle"  # idle | ok | retrying | auth_failed
        self.last_error = ""
        self.last_error_at: float | None = None
        self.last_success_at: float | None = None
        self.failures = 0  # consecutive failed attempts
        self.next_attempt_at: float | None = None
        self._single_left = 0  # entries to send one by one after a refused merged batch
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # set by retarget(): end the backoff wait now
        # hold(): spool but do not send (`labctl reload collector` lets the Collector's exporter be scraped
        # empty before its in-memory state is rebuilt). Released by hold(False) or after its time is up.
        self.held_until: float | None = None
        self._sending = False

    def delay(self, result: Result) -> float:
        r = self.settings.retry
        if result.retry_after is not None:
            return min(max(result.retry_after, 0.0), r.max_retry_after)
        base = min(r.max_interval, r.initial_interval * (r.multiplier ** max(self.failures - 1, 0)))
        return min(r.max_interval, base * random.uniform(0.5, 1.5))  # ±50% jitter, like the Collector

    @property
    def held(self) -> bool:
        if self.held_until is not None and time.monotonic() >= self.held_until:
            self.held_until = None
            log.warning("forwarding hold expired: sending again")
            self._wake.set()
        return self.held_until is not None

    async def hold(self, on: bool, seconds: float = 30.0) -> None:
        """Stop sending (data keeps being acknowledged and spooled) for at most `seconds`, or resume now.
        Returns once no request is in flight, so nothing reaches the upstream after a hold."""
        if not on:
            self.held_until = None
            self._wake.set()
            log.info("forwarding resumed: %d requests spooled meanwhile", self.spool.pending_rows)
            return
        self.held_until = time.monotonic() + seconds
        log.info("forwarding held for at most %.0fs: data is acknowledged and spooled", seconds)
        while self._sending:
            await asyncio.sleep(0.01)

    async def _wait_released(self) -> None:
        until = self.held_until
        if until is None:
            return
        stopper = asyncio.ensure_future(self._stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {stopper, waker},
                timeout=max(0.0, until - time.monotonic()) + 0.01,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopper.cancel()
            waker.cancel()
            await asyncio.gather(stopper, waker, return_exceptions=True)
        self._wake.clear()

    async def run(self) -> None:
        while not self._stop.is_set():
            if self.held:
                await self._wait_released()
                continue
            waiter = asyncio.ensure_future(self.spool.wait())
            stopper = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()
                await asyncio.gather(waiter, stopper, return_exceptions=True)
            if self._stop.is_set():
                return
            await self._attempt()

    async def retarget(
        self, settings: UpstreamSettings, sender: HttpSender | GrpcSender, quiet: bool = False
    ) -> None:
        """Send to another upstream from now on (PUT/DELETE /api/upstream): same spool, same counters.

        The backoff of the old target does not apply to the new one, so the next attempt is immediate; an
        attempt still waiting on the old target is cancelled by closing it and then simply repeated.
        """
        old = self.sender
        self.settings, self.sender = settings, sender
        self.state, self.failures, self.next_attempt_at = "idle", 0, None
        self.last_error, self.last_error_at = "", None
        self._single_left = 0
        self._wake.set()
        # quiet (a hidden fault, blind challenge): debug only, so the service log does not name the change.
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "upstream changed at runtime: now forwarding to %s over %s",
            safe_endpoint(settings.endpoint),
            settings.protocol,
        )
        await old.close()

    async def retry_now(self, sender: HttpSender | GrpcSender | None = None) -> None:
        """End the current backoff wait: the next attempt starts at once (e.g. the upstream is back), on
        `sender` when given (a fresh connection to the same target), keeping state and counters."""
        old = None
        if sender is not None:
            old, self.sender = self.sender, sender
        self._wake.set()
        if old is not None:
            await old.close()

    async def _attempt(self) -> None:
        if self.held:
            return
        await self._attempt_once()

    async def _attempt_once(self) -> None:
        self._wake.clear()
        max_bytes = 1 if self._single_left > 0 else self.settings.batch_max_bytes
        batch = self.spool.peek(max_bytes)
        if not batch:
            return
        signal = batch[0].signal
        items = sum(e.items for e in batch)
        body = batch[0].body if len(batch) == 1 else b"".join(e.body for e in batch)
        sender = self.sender
        # hold() waits for this send only: not for the backoff after a failed one, which could keep a
        # hold (and `labctl reload collector`) waiting up to the retry's max interval.
        self._sending = True
        try:
            result = await sender.send(signal, body)
        except asyncio.CancelledError:
            # retarget() closed the old upstream's channel under this call (grpc.aio cancels the RPC):
            # not our task being stopped, so repeat the batch on the new upstream instead of dying.
            if sender is self.sender or self._stop.is_set():
                raise
            return
        except Exception as exc:  # a sender bug must not stop forwarding: retry like a network error
            log.exception("sending to the upstream failed unexpectedly")
            result = Result(RETRYABLE, f"{type(exc).__name__}: {exc}", "internal")
        finally:
            self._sending = False
        if sender is not self.sender and result.kind != OK:
            return  # retargeted meanwhile: that answer was the old upstream's; the batch goes to the new one
        if result.kind == OK:
            self.spool.remove(batch)
            self.stats.forwarded[signal] += items - result.rejected
            if result.rejected:
                self.stats.dropped[(signal, "upstream_partial")] += result.rejected
                log.warning(
                    "upstream accepted %s but rejected %d: %s",
                    signal,
                    result.rejected,
                    result.rejected_message,
                )
            if self.state not in ("ok", "idle"):
                log.info(
                    "upstream %s is accepting data again after %d failed attempts; %d requests still spooled",
                    safe_endpoint(self.settings.endpoint),
                    self.failures,
                    self.spool.pending_rows,
                )
            self.state, self.failures, self.next_attempt_at = "ok", 0, None
            self.last_success_at = time.time()
            self._single_left = max(0, self._single_left - len(batch))
            return
        self.last_error, self.last_error_at = result.detail, time.time()
        if result.kind == PERMANENT:
            if len(batch) > 1:
                self._single_left = len(batch)
                return
            self.spool.remove(batch)
            self.stats.dropped[(signal, "upstream_permanent")] += items
            self._single_left = max(0, self._single_left - 1)
            log.error(
                "upstream refused %d %s for good (not retryable per OTLP): %s — dropped and counted in "
                "dropped{reason=upstream_permanent}",
                items,
                signal,
                result.detail,
            )
            return
        self.failures += 1
        self.stats.retries[(signal, result.reason or result.kind)] += 1
        new_state = "auth_failed" if result.kind == AUTH else "retrying"
        wait = self.delay(result)
        if new_state != self.state:
            if new_state == "auth_failed":
                log.error(
                    "upstream refused the proxy's credentials (%s). HOLDING %d spooled requests — nothing "
                    "is dropped; retrying every ≤%.0fs. Fix the upstream headers (LAB_PROXY_UPSTREAM_HEADERS)"
                    " or the upstream's token.",
                    result.detail,
                    self.spool.pending_rows,
                    self.settings.retry.max_interval,
                )
            else:
                log.warning("upstream unavailable (%s); spooling and retrying with backoff", result.detail)
        self.state = new_state
        self.next_attempt_at = time.time() + wait
        stopper = asyncio.ensure_future(self._stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stopper, waker}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            waker.cancel()
            await asyncio.gather(stopper, waker, return_exceptions=True)

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        return {
            "endpoint": safe_endpoint(self.settings.endpoint),
            "protocol": self.settings.protocol,
            "state": self.state,
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
            "last_error_age_s": round(now - self.last_error_at, 1) if self.last_error_at else None,
            "last_success_age_s": round(now - self.last_success_at, 1) if self.last_success_at else None,
            "next_attempt_in_s": round(max(0.0, self.next_attempt_at - now), 1)
            if self.next_attempt_at
            else None,
            "held": self.held,
        }

    async def stop(self) -> None:
        self._stop.set()
        await self.sender.close()
