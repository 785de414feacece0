"""Everything a student looks at in the proxy: records, violations, sessions, alerts, /metrics, the page.

    inspector = Inspector(config, data_dir)       # config: the proxy's expanded YAML (sections below)
    inspector.observe(signal, evaluation, meta)   # after every export request (meta: protocol, peer, ...)
    inspector.routes(stats_provider)              # aiohttp routes for the admin listener

Config sections (all optional):
    inspect:  {payloads: 200, records_per_payload: 200, violations: 1000, console: summary|points|off,
               resource_labels: [service.name, lab.marker], max_series: 20000}
    log:      {enabled: true, path: inspect/records.jsonl (relative to data_dir), max_bytes: 64MiB,
               writer: process | inline}   (process: a child process writes it, see logwriter.py)
    sessions: {max: 1000}
    redact:   {headers: [...], attributes: [...]}
    alerts:   [{name, kind: session_cost|tokens_per_minute|api_error_rate, threshold, window, min_events}]
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labctl.contract.shape import TelemetryShape
from labctl.proxy.inspect.alerts import AlertEngine
from labctl.proxy.inspect.console import ConsoleView
from labctl.proxy.inspect.exposition import ProxiedMetrics
from labctl.proxy.inspect.jsonl_fast import JsonlEncoder
from labctl.proxy.inspect.logwriter import LogWriterProcess
from labctl.proxy.inspect.records import LazyRecords, safe_record
from labctl.proxy.inspect.sessions import SessionTracker
from labctl.proxy.inspect.settings import InspectSettings
from labctl.proxy.inspect.store import JsonlLog, PayloadStore, dumps
from labctl.redact import Redactor

log = logging.getLogger("labctl.proxy.inspect")

__all__ = ["Inspector"]


class Inspector:
    def __init__(
        self, config: dict[str, Any] | None, data_dir: Path, clock: Callable[[], float] = time.time
    ) -> None:
        s = InspectSettings.from_config(config, data_dir)
        self.settings = s
        self.clock = clock
        self.data_dir = Path(data_dir)
        self.store = PayloadStore(
            max_payloads=s.payloads, max_records=s.records_per_payload, max_violations=s.violations
        )
        self.console = ConsoleView(s.console)
        self._base_redactor = s.redactor
        self.redactor = self._base_redactor
        self._redactor_contract: Any = None
        hidden = frozenset(self.redactor.attributes)
        self.metrics = ProxiedMetrics(s.resource_labels, s.max_series, hidden)
        self.sessions = SessionTracker(s.max_sessions, hidden)
        self._restore_sessions()
        self.jsonl: JsonlLog | None = None
        self.log_writer: LogWriterProcess | None = None
        self._log_dropped = 0
        self._log_mode = s.log_mode  # process | inline; None: no log
        self._log_path, self._log_max = s.log_path, s.log_max_bytes
        self.alerts = AlertEngine(list(s.alert_rules), self.sessions, self._alert_changed)
        self.contract: Any = None
        self.mode = s.mode
        # learning mode: the shape of everything sent, for `labctl contract propose` (GET /api/contract/drift)
        self.learned: TelemetryShape | None = TelemetryShape() if self.mode == "learn" else None
        self.learning_since = time.time()
        self.items: Counter[tuple[str, str]] = Counter()  # (signal, verdict) -> items
        self.violation_rules: Counter[tuple[str, str]] = Counter()  # (signal, rule) -> violations
        self.requests = 0
        self.events: Counter[str] = (
            Counter()
        )  # event name -> log records seen (events never reach Prometheus)
        self._encoder = JsonlEncoder()
        # Opened last: a config error above leaves no child process behind.
        if self._log_mode == "process":
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_writer = LogWriterProcess(self._log_path, self._log_max)
        elif self._log_mode == "inline":
            self.jsonl = JsonlLog(self._log_path, self._log_max)

    def _restore_sessions(self) -> None:
        """`labctl restore` leaves the backed-up sessions here; they are taken over once, at start."""
        path = self.data_dir / "inspect" / "sessions.json"
        if not path.is_file():
            return
        try:
            self.sessions.restore(json.loads(path.read_text())["sessions"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("restored sessions in %s are unreadable, starting without them: %s", path, exc)
        path.replace(path.with_name("sessions.json.loaded"))

    # --- observing -------------------------------------------------------------------------------

    def _redactor_for(self, contract: Any) -> Redactor:
        if contract is not self._redactor_contract:
            self._redactor_contract = contract
            extra: set[str] = getattr(contract, "sensitive_attributes", set()) or set()
            self.redactor = self._base_redactor.with_attributes(extra)
        return self.redactor

    def observe(self, signal: str, ev: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = meta or {}
        now = self.clock()
        self.contract = ev.contract
        red = self._redactor_for(ev.contract)
        # Violating records are built now (the violations list, the console); the first records of a
        # metrics payload only when someone opens it (records.LazyRecords). The JSONL log gets every
        # record through the encoder's shortcuts.
        total = ev.total
        n_keep = min(total, self.store.max_records)
        violating_idx = ev.violating_indices()
        built = {i: safe_record(ev.record(i), red) for i in violating_idx}
        violating = [built[i] for i in violating_idx]
        for r in violating:
            for v in r["violations"]:
                self.violation_rules[(signal, v["rule"])] += 1
        self.requests += 1
        self.items[(signal, "ok")] += total - len(violating)
        self.items[(signal, "violation")] += len(violating)
        kept: Any
        if signal == "metrics":
            kept = LazyRecords(ev.detached_items(n_keep), built, red)
        else:
            kept = [built[i] if i in built else safe_record(ev.record(i), red) for i in range(n_keep)]
        summary = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "signal": signal,
            "protocol": str(meta.get("protocol", "")),
            "content_type": str(meta.get("content_type", "")),
            "peer": str(meta.get("peer", "")),
            "bytes": int(meta.get("bytes", 0) or 0),
            "headers": red.header_map(meta.get("headers") or {}),
            "items": total,
            "rejected": ev.rejected,
            "verdict": "violation" if ev.rejected else "ok",
            "contract": getattr(ev.contract, "name", None),
            "message": red.text(ev.message),
            "names": _names(ev),
        }
        entry = self.store.add(summary, kept, violating, total)
        self._log(ev, red, entry["seq"], built)
        if signal == "logs":
            for name, _attrs, _res, _ok in ev.events():
                self.events[name] += 1
        if self.learned is not None:
            self.learned.observe(ev)
        self.sessions.observe(ev, now)
        self.metrics.observe(ev)
        self.alerts.record(
            now, self.sessions.last_tokens, self.sessions.last_api_requests, self.sessions.last_api_errors
        )
        self.alerts.evaluate(now, self.sessions.touched)
        if self.console.mode == "points":
            records = kept if isinstance(kept, list) else kept.build()
            self.console.show(summary, records + [built[i] for i in violating_idx if i >= n_keep])
        elif self.console.mode == "summary":
            self.console.show(summary, violating)  # summary lists only the violating points
        return entry

    def _log(self, ev: Any, red: Redactor, payload_id: int, built: dict[int, dict[str, Any]]) -> None:
        """One JSON line per record: handed to the writer process, or written here."""
        writer = self._live_writer()
        if writer is not None:
            raw = ev.raw if ev.raw is not None else ev.request.SerializeToString()
            writer.payload(
                ev.signal, payload_id, raw, {i: ev.items[i].violations for i in built}, red, ev.total
            )
        elif self.jsonl is not None:
            self.jsonl.write_bytes(self._encoder.encode(ev, red, payload_id, built))

    def _live_writer(self) -> LogWriterProcess | None:
        """The writer process, or None. One found gone (it said why in the log) is replaced by writing
        the log in this process from now on."""
        writer = self.log_writer
        if writer is not None and writer.failed:
            self._log_dropped += writer.dropped_records
            self.log_writer = writer = None
            self.jsonl = JsonlLog(self._log_path, self._log_max)
        return writer

    def log_stats(self) -> tuple[int, int]:
        """(records left out of the JSON Lines log so far, bytes waiting for its writer)."""
        w = self.log_writer
        return (
            self._log_dropped + (w.dropped_records if w is not None else 0),
            w.pending if w is not None else 0,
        )

    def log_status(self) -> dict[str, Any]:
        """For /api/overview: a client waits for `written_through` to reach a payload id to read its lines."""
        dropped, pending = self.log_stats()
        w = self.log_writer
        return {
            "writer": "process" if w is not None else "inline" if self.jsonl is not None else "off",
            "written_through": w.written_through if w is not None else self.store.last_seq,
            "pending_bytes": pending,
            "dropped_records": dropped,
        }

    def _alert_changed(self, alert: dict[str, Any]) -> None:
        line = dumps({"type": "alert", **alert}) + b"\n"
        writer = self._live_writer()
        if writer is not None:
            writer.lines(line)
        elif self.jsonl is not None:
            self.jsonl.write_bytes(line)

    def flush_log(self, timeout: float = 10.0) -> bool:
        """Wait until the JSON Lines log holds everything observed so far (True at once when inline)."""
        return self.log_writer.flush(timeout) if self.log_writer is not None else True

    def refresh(self) -> None:
        """Re-evaluate time-based state (rates fall, idle sessions resolve) before answering a read."""
        self.alerts.evaluate(self.clock())

    # --- serving ---------------------------------------------------------------------------------

    def routes(self, stats_provider: Callable[[], dict[str, Any]] | None = None) -> list[Any]:
        from labctl.proxy.inspect.api import make_routes

        return make_routes(self, stats_provider)

    def contract_info(self) -> dict[str, Any]:
        c = self.contract
        if c is None:
            return {
                "loaded": False,
                "name": None,
                "path": None,
                "dialect": None,
                "mode": self.mode,
                "contract": None,
            }
        return {
            "loaded": True,
            "name": c.name,
            "path": c.path,
            "dialect": c.spec.dialect,
            "mode": self.mode,
            "contract": c.spec.to_dict(),
        }

    def drift(self) -> dict[str, Any]:
        """Learning mode's record: the shape of what was sent and what the contract in force lacks."""
        from labctl.contract.drift import propose, weaver_changes

        out: dict[str, Any] = {
            "mode": self.mode,
            "recording": self.learned is not None,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.learning_since)),
        }
        if self.learned is None:
            out.update(
                observed=None,
                changes=None,
                hint="switch recording on: `labctl contract learn` (or run the proxy with contract.mode: learn)",
            )
            return out
        out["observed"] = self.learned.to_dict()
        out["changes"] = (
            weaver_changes(self.contract.spec, propose(self.contract.spec, self.learned)[1])["changes"]
            if self.contract is not None
            else None
        )
        return out

    def set_recording(self, on: bool) -> None:
        """Learning switched on or off while the proxy runs (off forgets what was recorded)."""
        if on and self.learned is None:
            self.learned = TelemetryShape()
            self.learning_since = time.time()
        elif not on:
            self.learned = None

    def reset_drift(self) -> None:
        if self.learned is not None:
            self.learned = TelemetryShape()
            self.learning_since = time.time()

    def set_contract(self, contract: Any) -> None:
        """Show a contract on the page and API before the first export arrives."""
        self.contract = contract

    def close(self) -> None:
        if self.log_writer is not None:
            self.log_writer.close()
        if self.jsonl is not None:
            self.jsonl.close()


def _names(ev: Any) -> list[str]:
    """The distinct metric / event / span names of a payload (at most 20), for the payload list."""
    names: set[str] = set()
    if ev.signal == "metrics":  # collected per metric description: a handful, whatever the point count
        names.update(ev.metric_names)
    else:
        for item in ev.items:
            names.add(str(item.value))
            if len(names) > 20:
                break
    return sorted(names)[:20]
