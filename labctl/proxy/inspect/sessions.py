"""Per-session analytics from Claude Code's metrics and events (keyed by `session.id`).

Tokens by type, cost, lines added/removed, commits, pull requests, active time, edit decisions,
prompts, API requests and errors, tool decisions. Counter points go through a CounterAccumulator, so
delta and cumulative exports give the same totals. Memory is bounded: the least recently seen
sessions are forgotten beyond `max_sessions`.
"""

from __future__ import annotations

import calendar
import math
import time
from collections import OrderedDict
from typing import Any

from labctl.contract import Evaluation, Item, SeriesId
from labctl.otlp.values import attrs_key
from labctl.proxy.inspect.accumulate import CounterAccumulator

_PREFIX = "claude_code."
# metric name -> field of the session it adds to (a dict field is split by the attribute in brackets)
_METRICS = {
    "claude_code.token.usage": ("tokens", "type"),
    "claude_code.cost.usage": ("cost_usd", None),
    "claude_code.lines_of_code.count": ("lines", "type"),
    "claude_code.commit.count": ("commits", None),
    "claude_code.pull_request.count": ("pull_requests", None),
    "claude_code.active_time.total": ("active_time_s", "type"),
    "claude_code.code_edit_tool.decision": ("edit_decisions", "decision"),
    "claude_code.session.count": ("starts", None),
}
CSV_FIELDS = (
    "session_id",
    "first_seen",
    "last_seen",
    "user",
    "service_version",
    "models",
    "tokens_input",
    "tokens_output",
    "tokens_cache_read",
    "tokens_cache_creation",
    "tokens_total",
    "cost_usd",
    "lines_added",
    "lines_removed",
    "commits",
    "pull_requests",
    "active_time_s",
    "edit_accepted",
    "edit_rejected",
    "prompts",
    "api_requests",
    "api_errors",
    "tool_decisions_accept",
    "tool_decisions_reject",
    "tool_results",
    "tool_failures",
    "violations",
)


def session_id_of(attrs: dict[str, Any], resource: dict[str, Any]) -> str | None:
    sid = attrs.get("session.id")
    if sid is None:
        sid = resource.get("session.id")
    return None if sid is None else str(sid)


def _resource_key(resource: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return tuple(sorted(resource.items()))
    except TypeError:
        return (repr(sorted(resource.items(), key=lambda kv: kv[0])),)


class Session:
    __slots__ = (
        "active_time_s",
        "api_errors",
        "api_requests",
        "commits",
        "cost_usd",
        "edit_decisions",
        "first_seen",
        "last_seen",
        "lines",
        "models",
        "prompts",
        "pull_requests",
        "service_version",
        "session_id",
        "starts",
        "tokens",
        "tool_decisions",
        "tool_failures",
        "tool_results",
        "user",
        "violations",
    )

    def __init__(self, session_id: str, now: float) -> None:
        self.session_id = session_id
        self.first_seen = now
        self.last_seen = now
        self.tokens: dict[str, float] = {}
        self.cost_usd = 0.0
        self.lines: dict[str, float] = {}
        self.commits = 0.0
        self.pull_requests = 0.0
        self.active_time_s: dict[str, float] = {}
        self.edit_decisions: dict[str, float] = {}
        self.starts = 0.0
        self.prompts = 0
        self.api_requests = 0
        self.api_errors = 0
        self.tool_decisions: dict[str, int] = {}
        self.tool_results = 0
        self.tool_failures = 0
        self.models: set[str] = set()
        self.user = ""
        self.service_version = ""
        self.violations = 0

    def to_dict(self) -> dict[str, Any]:
        tokens = {k: _num(v) for k, v in sorted(self.tokens.items())}
        return {
            "session_id": self.session_id,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "user": self.user,
            "service_version": self.service_version,
            "models": sorted(self.models),
            "tokens": tokens,
            "tokens_total": _num(sum(self.tokens.values())),
            "cost_usd": round(self.cost_usd, 6),
            "lines_added": _num(self.lines.get("added", 0)),
            "lines_removed": _num(self.lines.get("removed", 0)),
            "commits": _num(self.commits),
            "pull_requests": _num(self.pull_requests),
            "active_time_s": round(sum(self.active_time_s.values()), 3),
            "active_time_by_type": {k: round(v, 3) for k, v in sorted(self.active_time_s.items())},
            "edit_decisions": {k: _num(v) for k, v in sorted(self.edit_decisions.items())},
            "sessions_started": _num(self.starts),
            "prompts": self.prompts,
            "api_requests": self.api_requests,
            "api_errors": self.api_errors,
            "tool_decisions": dict(sorted(self.tool_decisions.items())),
            "tool_results": self.tool_results,
            "tool_failures": self.tool_failures,
            "violations": self.violations,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Session:
        """A session as to_dict() wrote it (a restored backup, `labctl restore`)."""
        s = cls(str(d["session_id"]), _epoch(d.get("first_seen")))
        s.last_seen = _epoch(d.get("last_seen"))
        s.user, s.service_version = str(d.get("user", "")), str(d.get("service_version", ""))
        s.models = set(d.get("models") or [])
        s.tokens = {str(k): float(v) for k, v in (d.get("tokens") or {}).items()}
        s.cost_usd = float(d.get("cost_usd", 0))
        s.lines = {"added": float(d.get("lines_added", 0)), "removed": float(d.get("lines_removed", 0))}
        s.lines = {k: v for k, v in s.lines.items() if v}
        s.commits, s.pull_requests = float(d.get("commits", 0)), float(d.get("pull_requests", 0))
        s.active_time_s = {str(k): float(v) for k, v in (d.get("active_time_by_type") or {}).items()}
        s.edit_decisions = {str(k): float(v) for k, v in (d.get("edit_decisions") or {}).items()}
        s.starts = float(d.get("sessions_started", 0))
        s.prompts, s.api_requests = int(d.get("prompts", 0)), int(d.get("api_requests", 0))
        s.api_errors, s.tool_results = int(d.get("api_errors", 0)), int(d.get("tool_results", 0))
        s.tool_decisions = {str(k): int(v) for k, v in (d.get("tool_decisions") or {}).items()}
        s.tool_failures, s.violations = int(d.get("tool_failures", 0)), int(d.get("violations", 0))
        return s

    def csv_row(self) -> dict[str, Any]:
        d = self.to_dict()
        t = d["tokens"]
        return {
            "session_id": d["session_id"],
            "first_seen": d["first_seen"],
            "last_seen": d["last_seen"],
            "user": d["user"],
            "service_version": d["service_version"],
            "models": " ".join(d["models"]),
            "tokens_input": t.get("input", 0),
            "tokens_output": t.get("output", 0),
            "tokens_cache_read": t.get("cacheRead", 0),
            "tokens_cache_creation": t.get("cacheCreation", 0),
            "tokens_total": d["tokens_total"],
            "cost_usd": d["cost_usd"],
            "lines_added": d["lines_added"],
            "lines_removed": d["lines_removed"],
            "commits": d["commits"],
            "pull_requests": d["pull_requests"],
            "active_time_s": d["active_time_s"],
            "edit_accepted": d["edit_decisions"].get("accept", 0),
            "edit_rejected": d["edit_decisions"].get("reject", 0),
            "prompts": d["prompts"],
            "api_requests": d["api_requests"],
            "api_errors": d["api_errors"],
            "tool_decisions_accept": d["tool_decisions"].get("accept", 0),
            "tool_decisions_reject": d["tool_decisions"].get("reject", 0),
            "tool_results": d["tool_results"],
            "tool_failures": d["tool_failures"],
            "violations": d["violations"],
        }


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 6)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _epoch(iso: Any) -> float:
    try:
        return float(calendar.timegm(time.strptime(str(iso), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return time.time()


class SessionTracker:
    def __init__(self, max_sessions: int = 1000, hidden: frozenset[str] = frozenset()) -> None:
        self.max_sessions = max_sessions
        self.hidden = hidden  # redacted attributes: never copied into a session
        # metric name -> series id -> (session id, field, bucket key, model) of a series naming a session;
        # only the metrics in _METRICS have an entry
        self._info: dict[str, dict[SeriesId, tuple[str, str, Any, Any]]] = {}
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.counters = CounterAccumulator()
        # what the last observe() added, for rate alerts: tokens, cost, api requests, api errors
        self.last_tokens = 0.0
        self.last_api_requests = 0
        self.last_api_errors = 0
        self.touched: set[str] = set()  # sessions the last observe() changed

    def _session(self, sid: str, now: float) -> Session:
        s = self.sessions.get(sid)
        if s is None:
            s = self.sessions[sid] = Session(sid, now)
            if len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
        else:
            s.last_seen = now
            self.sessions.move_to_end(sid)
        return s

    def observe(self, ev: Evaluation, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.last_tokens = 0.0
        self.last_api_requests = 0
        self.last_api_errors = 0
        self.touched = set()
        if ev.signal == "metrics":
            self._metrics(ev.items, now)
        elif ev.signal == "logs":
            self._events(ev, now)

    def _metrics(self, items: list[Item], now: float) -> None:
        res_keys: dict[int, tuple[Any, ...]] = {}  # resource index in the request -> its key
        touched: dict[str, Session] = {}
        sessions = self.sessions
        isfinite = math.isfinite
        info_cache = self._info
        last_meta: Any = None
        spec: Any = None
        known: dict[SeriesId, tuple[str, str, Any, Any]] = {}
        for item in items:
            meta = item.meta
            if meta is not last_meta:  # one Metric's points share name, resource and temporality
                last_meta = meta
                resource, name, temporality, ri = (
                    meta.resource,
                    meta.name or "",
                    meta.temporality,
                    meta.resource_index,
                )
                spec = _METRICS.get(name) if meta.kind == "sum" or meta.kind == "gauge" else None
                if spec is not None:
                    found = info_cache.get(name)
                    if found is None:
                        found = info_cache[name] = {}
                    known = found
            if spec is None:
                continue
            attrs, value, series = item.attributes, item.value, item.series
            # What a series contributes to (session, field, bucket) is worked out once per series id.
            info = known.get(series) if series is not None else None
            if info is None:
                sid = attrs.get("session.id")
                if sid is None:
                    sid = resource.get("session.id")
                    if sid is None:
                        # no session (OTEL_METRICS_INCLUDE_SESSION_ID=false): still counts for token rates
                        if spec[0] == "tokens" and value is not None and isfinite(value):
                            self.last_tokens += self._increase(item, ri, res_keys)
                        continue
                field, split = spec
                info = (
                    str(sid),
                    field,
                    None if split is None else attrs.get(split, "unknown"),
                    attrs.get("model"),
                )
                if series is not None and "session.id" in attrs:
                    if len(known) >= 50_000:
                        known.clear()
                    known[series] = info
            if value is None or not isfinite(value):
                continue
            sid, field, k, model = info
            if temporality == "cumulative":  # only cumulative points need the series' last value
                inc = self._increase(item, ri, res_keys)
            else:
                inc = value if value > 0 else 0.0
            s = touched.get(sid)
            if s is None:
                s = sessions.get(sid)
                if s is None:
                    s = self._session(sid, now)
                touched[sid] = s
            if item.violations:
                s.violations += 1
            if (model is not None and model not in s.models) or not s.user:
                self._identity(s, attrs, resource)
            if k is None:
                setattr(s, field, getattr(s, field) + inc)
            else:
                bucket = getattr(s, field)
                bucket[k] = bucket.get(k, 0.0) + inc
            if field == "tokens":
                self.last_tokens += inc
        self.touched.update(touched)
        for sid, s in touched.items():  # recency once per session and batch, not per point
            s.last_seen = now
            if sid in sessions:
                sessions.move_to_end(sid)

    def _increase(self, item: Item, ri: int, res_keys: dict[int, tuple[Any, ...]]) -> float:
        """How much a counter point adds; `ri`: its resource's index in the request (`res_keys`' key)."""
        value, meta = item.value, item.meta
        if meta.temporality != "cumulative":
            return value if value > 0 else 0.0
        rk = res_keys.get(ri)
        if rk is None:
            rk = res_keys[ri] = _resource_key(meta.resource)
        series = item.series if item.series is not None else attrs_key(item.attributes)
        return self.counters.increase((meta.name, rk, series), "cumulative", item.start_ns, float(value))

    def _events(self, ev: Evaluation, now: float) -> None:
        for name, attrs, resource, ok in ev.events():
            short = name.removeprefix(_PREFIX)
            sid = session_id_of(attrs, resource)
            if short == "api_request":
                self.last_api_requests += 1
            elif short == "api_error":
                self.last_api_errors += 1
            if sid is None:
                continue
            s = self._session(sid, now)
            self.touched.add(sid)
            if not ok:
                s.violations += 1
            self._identity(s, attrs, resource)
            if short == "user_prompt":
                s.prompts += 1
            elif short == "api_request":
                s.api_requests += 1
            elif short == "api_error":
                s.api_errors += 1
            elif short == "tool_decision":
                d = str(attrs.get("decision", "unknown"))
                s.tool_decisions[d] = s.tool_decisions.get(d, 0) + 1
            elif short == "tool_result":
                s.tool_results += 1
                if str(attrs.get("success", "true")).lower() == "false":
                    s.tool_failures += 1

    def _identity(self, s: Session, attrs: dict[str, Any], resource: dict[str, Any]) -> None:
        model = attrs.get("model")
        if model is not None and len(s.models) < 20:
            s.models.add(str(model))
        if not s.user:
            for key in ("user.account_uuid", "user.id", "user.email"):
                user = attrs.get(key)
                if user and key not in self.hidden:
                    s.user = str(user)
                    break
        if not s.service_version:
            s.service_version = str(resource.get("service.version", "") or "")

    def restore(self, sessions: list[dict[str, Any]]) -> None:
        """Sessions from a backup (oldest first, as list() returns them newest first)."""
        for d in reversed(sessions):
            s = Session.from_dict(d)
            self.sessions[s.session_id] = s
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)

    def list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in reversed(self.sessions.values())]

    def get(self, sid: str) -> Session | None:
        return self.sessions.get(sid)
