"""Everything a student looks at in the proxy: records, violations, sessions, alerts, /metrics, the page.

    inspector = Inspector(config, data_dir)       # config: the proxy's expanded YAML (sections below)
    inspector.observe(signal, evaluation, meta)   # after every export request (meta: protocol, peer, ...)
    inspector.routes(stats_provider)              # aiohttp routes for the admin listener

Config sections (all optional):
    inspect:  {payloads: 200, records_per_payload: 200, violations: 1000, console: summary|points|off,
               resource_labels: [service.name, lab.marker], max_series: 20000}
    log:      {enabled: true, path: inspect/records.jsonl (relative to data_dir), max_bytes: 64MiB}
    sessions: {max: 1000}
    redact:   {headers: [...], attributes: [...]}
    alerts:   [{name, kind: session_cost|tokens_per_minute|api_error_rate, threshold, window, min_events}]
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labctl.errors import LabError
from labctl.proxy.inspect.alerts import AlertEngine, parse_rules
from labctl.proxy.inspect.console import ConsoleView
from labctl.proxy.inspect.exposition import ProxiedMetrics
from labctl.proxy.inspect.jsonl_fast import JsonlEncoder
from labctl.proxy.inspect.sessions import SessionTracker
from labctl.proxy.inspect.store import JsonlLog, PayloadStore, clip_record
from labctl.redact import Redactor

__all__ = ["Inspector"]

_INSPECT_KEYS = ("payloads", "records_per_payload", "violations", "console", "resource_labels", "max_series")


def _section(config: dict[str, Any], key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    sec = config.get(key) or {}
    if not isinstance(sec, dict):
        raise LabError(f"proxy config: '{key}' must be a mapping", f"write {key}: as `key: value` lines")
    unknown = set(sec) - set(allowed)
    if unknown:
        raise LabError(f"proxy config: {key}: unknown key(s) {', '.join(sorted(map(str, unknown)))}",
                       f"{key} takes: {', '.join(allowed)}")
    return sec


def _positive_int(sec: dict[str, Any], key: str, default: int, where: str) -> int:
    v = sec.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise LabError(f"proxy config: {where}.{key} must be a positive integer, got {v!r}", f"e.g. {key}: {default}")
    return v


class Inspector:
    def __init__(self, config: dict[str, Any] | None, data_dir: Path,
                 clock: Callable[[], float] = time.time) -> None:
        config = config or {}
        self.clock = clock
        self.data_dir = Path(data_dir)
        ins = _section(config, "inspect", _INSPECT_KEYS)
        self.store = PayloadStore(
            max_payloads=_positive_int(ins, "payloads", 200, "inspect"),
            max_records=_positive_int(ins, "records_per_payload", 200, "inspect"),
            max_violations=_positive_int(ins, "violations", 1000, "inspect"))
        console = str(ins.get("console", "summary"))
        if console not in ("summary", "points", "off"):
            raise LabError(f"proxy config: inspect.console is {console!r}", "use summary, points or off")
        self.console = ConsoleView(console)
        resource_labels = ins.get("resource_labels", ["service.name", "lab.marker"])
        if not isinstance(resource_labels, list):
            raise LabError("proxy config: inspect.resource_labels must be a list", "e.g. [service.name, lab.marker]")
        self._base_redactor = Redactor.from_config(config.get("redact"))
        self.redactor = self._base_redactor
        self._redactor_contract: Any = None
        hidden = frozenset(self.redactor.attributes)
        self.metrics = ProxiedMetrics(tuple(map(str, resource_labels)),
                                      _positive_int(ins, "max_series", 20_000, "inspect"), hidden)
        sess = _section(config, "sessions", ("max",))
        self.sessions = SessionTracker(_positive_int(sess, "max", 1000, "sessions"), hidden)
        logc = _section(config, "log", ("enabled", "path", "max_bytes"))
        self.jsonl: JsonlLog | None = None
        if logc.get("enabled", True):
            from labctl.proxy.config import parse_size

            path = Path(str(logc.get("path", "inspect/records.jsonl")))
            if not path.is_absolute():
                path = self.data_dir / path
            self.jsonl = JsonlLog(path, parse_size(logc.get("max_bytes", "64MiB"), "log.max_bytes"))
        self.alerts = AlertEngine(parse_rules(config.get("alerts")), self.sessions, self._alert_changed)
        self.contract: Any = None
        self.mode = str((config.get("contract") or {}).get("mode", "observe")) \
            if isinstance(config.get("contract"), dict) else "observe"
        self.items: Counter[tuple[str, str]] = Counter()  # (signal, verdict) -> items
        self.violation_rules: Counter[tuple[str, str]] = Counter()  # (signal, rule) -> violations
        self.requests = 0
        self.events: Counter[str] = Counter()  # event name -> log records seen (events never reach Prometheus)
        self._encoder = JsonlEncoder()

    # --- observing -------------------------------------------------------------------------------

    def _redactor_for(self, contract: Any) -> Redactor:
        if contract is not self._redactor_contract:
            self._redactor_contract = contract
            extra = getattr(contract, "sensitive_attributes", set()) or set()
            self.redactor = self._base_redactor.with_attributes(extra)
        return self.redactor

    def observe(self, signal: str, ev: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = meta or {}
        now = self.clock()
        self.contract = ev.contract
        red = self._redactor_for(ev.contract)
        hidden = red.attributes
        # Full records only for what is kept and shown: the first records of the payload and every
        # violating one. The JSONL log gets all of them through the encoder's shortcuts.
        total = ev.total
        n_keep = min(total, self.store.max_records)
        built: dict[int, dict[str, Any]] = {}
        safe_resources: dict[int, bool] = {}
        for i in range(n_keep):
            r = ev.record(i)
            res = r["resource"]
            res_ok = safe_resources.get(id(res))
            if res_ok is None:
                res_ok = safe_resources[id(res)] = hidden.isdisjoint(res)
            if r["violations"] or not res_ok or "body" in r or not hidden.isdisjoint(r["attributes"]):
                r = red.record(r)
            built[i] = clip_record(r)
        violating_idx = ev.violating_indices()
        for i in violating_idx:
            if i not in built:
                built[i] = clip_record(red.record(ev.record(i)))
        violating = [built[i] for i in violating_idx]
        for r in violating:
            for v in r["violations"]:
                self.violation_rules[(signal, v["rule"])] += 1
        self.requests += 1
        self.items[(signal, "ok")] += total - len(violating)
        self.items[(signal, "violation")] += len(violating)
        kept = [built[i] for i in range(n_keep)]
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
        if self.jsonl is not None:
            self.jsonl.write_bytes(self._encoder.encode(ev, red, entry["seq"], built))
        if signal == "logs":
            for name, _attrs, _res, _ok in ev.events():
                self.events[name] += 1
        points = list(ev.metric_points()) if signal == "metrics" else None
        self.sessions.observe(ev, now, points)
        self.metrics.observe(ev, points)
        self.alerts.record(now, self.sessions.last_tokens, self.sessions.last_api_requests,
                           self.sessions.last_api_errors)
        self.alerts.evaluate(now, self.sessions.touched)
        if self.console.mode != "off":
            shown = kept + [built[i] for i in violating_idx if i >= n_keep]
            self.console.show(summary, shown)
        return entry

    def _alert_changed(self, alert: dict[str, Any]) -> None:
        if self.jsonl is not None:
            self.jsonl.write([{"type": "alert", **alert}])

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
            return {"loaded": False, "name": None, "path": None, "dialect": None, "mode": self.mode,
                    "contract": None}
        return {"loaded": True, "name": c.name, "path": c.path, "dialect": c.spec.dialect, "mode": self.mode,
                "contract": c.spec.to_dict()}

    def set_contract(self, contract: Any) -> None:
        """Show a contract on the page and API before the first export arrives."""
        self.contract = contract

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()


def _names(ev: Any) -> list[str]:
    """The distinct metric / event / span names of a payload (at most 20), for the payload list."""
    names: set[str] = set()
    if ev.signal == "metrics":  # from the request's Metric messages: a handful, whatever the point count
        for rm in ev.request.resource_metrics:
            for sm in rm.scope_metrics:
                names.update(m.name for m in sm.metrics)
    else:
        for item in ev._items:
            names.add(str(item[4]))
            if len(names) > 20:
                break
    return sorted(names)[:20]
