"""Threshold alerts from the proxy config, with firing / resolved state.

    alerts:
      - name: session-cost-high
        kind: session_cost          # cost of one session (USD) above threshold; one alert per session,
        threshold: 5                # resolved once the session has been idle for `idle` (default 10m)
      - name: token-burst
        kind: tokens_per_minute     # tokens of all sessions over the last `window` (default 60s), per minute
        threshold: 100000
      - name: api-errors
        kind: api_error_rate        # api_error / (api_request + api_error) events over `window` (default 5m)
        threshold: 0.2
        min_events: 5               # no verdict on fewer events than this

Rules are evaluated after every export and whenever the page, the API or /metrics asks, so a rate that
drops resolves its alert without new data.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabError
from labctl.proxy.inspect.sessions import SessionTracker
from labctl.units import parse_duration

log = logging.getLogger("labctl.proxy.alerts")

KINDS = ("session_cost", "tokens_per_minute", "api_error_rate")
_DEFAULT_WINDOW = {"session_cost": 600.0, "tokens_per_minute": 60.0, "api_error_rate": 300.0}
_UNITS = {"session_cost": "USD", "tokens_per_minute": "tokens/min", "api_error_rate": "ratio"}


@dataclass
class AlertRule:
    name: str
    kind: str
    threshold: float
    window: float
    min_events: int = 5
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "threshold": self.threshold,
            "unit": _UNITS[self.kind],
            "window_s": self.window,
            "min_events": self.min_events,
            "description": self.description,
        }


@dataclass
class AlertState:
    rule: AlertRule
    labels: dict[str, str]
    state: str = "inactive"  # inactive | firing | resolved
    value: float = 0.0
    since: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    transitions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        r = self.rule
        what = {
            "session_cost": f"session {self.labels.get('session_id', '?')} cost {self.value:.4f} USD",
            "tokens_per_minute": f"{self.value:.0f} tokens/min",
            "api_error_rate": f"API error rate {self.value:.0%}",
        }[r.kind]
        verb = "above" if self.state == "firing" else "back under" if self.state == "resolved" else "under"
        return f"{r.name}: {what} {verb} threshold {r.threshold:g} {_UNITS[r.kind]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.rule.name,
            "kind": self.rule.kind,
            "labels": dict(self.labels),
            "state": self.state,
            "value": round(self.value, 6),
            "threshold": self.rule.threshold,
            "unit": _UNITS[self.rule.kind],
            "since": _iso(self.since),
            "fired_at": _iso(self.fired_at),
            "resolved_at": _iso(self.resolved_at),
            "message": self.message(),
        }


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_rules(section: Any) -> list[AlertRule]:
    if section is None:
        return []
    if not isinstance(section, list):
        raise LabError(
            "proxy config: 'alerts' must be a list of rules",
            "e.g. alerts: [{name: cost, kind: session_cost, threshold: 5}]",
        )
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for i, item in enumerate(section):
        where = f"alerts[{i}]"
        if not isinstance(item, dict):
            raise LabError(f"proxy config: {where} must be a mapping", "give it name, kind and threshold")
        unknown = set(item) - {"name", "kind", "threshold", "window", "idle", "min_events", "description"}
        if unknown:
            raise LabError(
                f"proxy config: {where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}",
                "alert rules take name, kind, threshold, window (or idle), min_events, description",
            )
        kind = item.get("kind")
        if kind not in KINDS:
            raise LabError(
                f"proxy config: {where}: kind {kind!r} is not known", f"use one of: {', '.join(KINDS)}"
            )
        name = str(item.get("name") or kind)
        if name in seen:
            raise LabError(
                f"proxy config: {where}: a second alert named {name!r}", "give every alert its own name"
            )
        seen.add(name)
        threshold = item.get("threshold")
        if isinstance(threshold, str):  # `${VAR:-5}` in the config expands to a string
            try:
                threshold = float(threshold)
            except ValueError:
                pass
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or threshold < 0:
            raise LabError(
                f"proxy config: {where}: threshold {threshold!r} must be a number >= 0",
                "e.g. threshold: 5 (USD), 100000 (tokens/min) or 0.2 (error ratio)",
            )
        window_value = item.get("window", item.get("idle", _DEFAULT_WINDOW[kind]))
        min_events = item.get("min_events", 5)
        if not isinstance(min_events, int) or isinstance(min_events, bool) or min_events < 1:
            raise LabError(
                f"proxy config: {where}: min_events must be a positive integer", "e.g. min_events: 5"
            )
        rules.append(
            AlertRule(
                name=name,
                kind=str(kind),
                threshold=float(threshold),
                window=parse_duration(window_value, f"proxy config: {where}.window"),
                min_events=min_events,
                description=str(item.get("description", "") or ""),
            )
        )
    return rules


class AlertEngine:
    def __init__(
        self, rules: list[AlertRule], sessions: SessionTracker, on_change: Any = None, max_history: int = 200
    ) -> None:
        self.rules = rules
        self.sessions = sessions
        self.on_change = on_change  # callable(AlertState dict) for the JSONL log
        self.states: dict[tuple[str, tuple[tuple[str, str], ...]], AlertState] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=max_history)
        self._tokens: deque[tuple[float, float]] = deque()
        self._api: deque[tuple[float, int, int]] = deque()
        self._max_window = max((r.window for r in rules), default=300.0)

    def record(self, now: float, tokens: float, api_requests: int, api_errors: int) -> None:
        if tokens:
            self._tokens.append((now, tokens))
        if api_requests or api_errors:
            self._api.append((now, api_requests, api_errors))

    def _prune(self, now: float) -> None:
        horizon = now - self._max_window
        while self._tokens and self._tokens[0][0] < horizon:
            self._tokens.popleft()
        while self._api and self._api[0][0] < horizon:
            self._api.popleft()

    def evaluate(self, now: float | None = None, touched: Any = None) -> None:
        """`touched`: the session ids an export just changed — then only those are looked at for the
        per-session rules (every read of the API or the page looks at all of them)."""
        now = time.time() if now is None else now
        self._prune(now)
        for rule in self.rules:
            if rule.kind == "session_cost":
                if touched is not None:
                    candidates = [
                        (sid, self.sessions.sessions[sid]) for sid in touched if sid in self.sessions.sessions
                    ]
                else:
                    candidates = list(self.sessions.sessions.items())
                for sid, s in candidates:
                    active = now - s.last_seen <= rule.window
                    key: tuple[str, tuple[tuple[str, str], ...]] = (rule.name, (("session_id", sid),))
                    st = self.states.get(key)
                    if st is None and not (active and s.cost_usd > rule.threshold):
                        continue
                    self._set(
                        rule, {"session_id": sid}, s.cost_usd, active and s.cost_usd > rule.threshold, now
                    )
                if touched is not None:
                    continue
                # sessions forgotten by the tracker resolve too
                for key, st in list(self.states.items()):
                    if (
                        key[0] == rule.name
                        and st.state == "firing"
                        and st.labels.get("session_id") not in self.sessions.sessions
                    ):
                        self._set(rule, st.labels, st.value, False, now)
            elif rule.kind == "tokens_per_minute":
                start = now - rule.window
                total = sum(n for t, n in self._tokens if t >= start)
                rate = total * 60.0 / rule.window
                self._set(rule, {}, rate, rate > rule.threshold, now)
            else:
                start = now - rule.window
                reqs = errs = 0
                for t, r, e in self._api:
                    if t >= start:
                        reqs += r
                        errs += e
                n = reqs + errs
                ratio = errs / n if n else 0.0
                self._set(
                    rule,
                    {},
                    ratio,
                    n >= rule.min_events and ratio > rule.threshold,
                    now,
                    {"events": n, "errors": errs},
                )

    def _set(
        self,
        rule: AlertRule,
        labels: dict[str, str],
        value: float,
        breach: bool,
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> None:
        key = (rule.name, tuple(sorted(labels.items())))
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = AlertState(rule=rule, labels=dict(labels))
        st.value = value
        if extra:
            st.extra = extra
        new = "firing" if breach else ("resolved" if st.state in ("firing", "resolved") else "inactive")
        if new == st.state:
            return
        st.state = new
        st.since = now
        st.transitions += 1
        if new == "firing":
            st.fired_at = now
            st.resolved_at = None
            log.warning("alert firing: %s", st.message())
        elif new == "resolved":
            st.resolved_at = now
            log.info("alert resolved: %s", st.message())
        entry = st.to_dict()
        self.history.appendleft(entry)
        if self.on_change is not None:
            self.on_change(entry)

    def active(self) -> list[dict[str, Any]]:
        return [st.to_dict() for st in self.states.values() if st.state == "firing"]

    def snapshot(self) -> dict[str, Any]:
        return {
            "rules": [r.to_dict() for r in self.rules],
            "alerts": [st.to_dict() for st in self.states.values() if st.state != "inactive"],
            "firing": sum(1 for st in self.states.values() if st.state == "firing"),
            "history": list(self.history),
        }

    def gauges(self) -> list[tuple[dict[str, str], int, float]]:
        """(labels incl. alert name, firing 0/1, value) for /metrics; rules without state show 0."""
        out: list[tuple[dict[str, str], int, float]] = []
        named = set()
        for st in self.states.values():
            named.add(st.rule.name)
            out.append(({"alert": st.rule.name, **st.labels}, 1 if st.state == "firing" else 0, st.value))
        for r in self.rules:
            if r.name not in named:
                out.append(({"alert": r.name}, 0, 0.0))
        return out
