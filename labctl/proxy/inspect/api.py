"""The admin listener's inspection routes: the page, /metrics and /api/* (described in openapi.json)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from labctl.proxy.inspect.exposition import CONTENT_TYPE, escape, render_proxy_stats
from labctl.proxy.inspect.sessions import CSV_FIELDS

if TYPE_CHECKING:
    from labctl.proxy.inspect import Inspector

_STATIC = {"app.js": "application/javascript", "style.css": "text/css", "index.html": "text/html"}
_SIGNALS = ("metrics", "logs", "traces")


def _asset(name: str) -> bytes:
    return resources.files("labctl.proxy.inspect").joinpath(name).read_bytes()


def openapi_document() -> dict[str, Any]:
    return json.loads(_asset("openapi.json"))


class BadQuery(Exception):
    pass


def _int(request: web.Request, key: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadQuery(f"query parameter '{key}' must be an integer, got {raw!r}") from None
    if not lo <= v <= hi:
        raise BadQuery(f"query parameter '{key}' must be between {lo} and {hi}, got {v}")
    return v


def _choice(
    request: web.Request, key: str, choices: tuple[str, ...], default: str | None = None
) -> str | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise BadQuery(f"query parameter '{key}' must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def make_routes(ins: Inspector, stats_provider: Callable[[], dict[str, Any]] | None) -> list[web.RouteDef]:
    def guarded(fn: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await fn(request)
            except BadQuery as exc:
                return _error(400, str(exc))

        return handler

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            body=_asset("static/index.html"),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            return _error(404, f"no static file {name!r}")
        return web.Response(
            body=_asset(f"static/{name}"),
            content_type=_STATIC[name],
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def metrics(_: web.Request) -> web.Response:
        ins.refresh()
        out: list[str] = []
        ins.metrics.render(out)
        if stats_provider is not None:
            render_proxy_stats(stats_provider(), out)
        out.append(
            "# HELP labctl_proxy_inspected_items_total Items inspected, by signal and contract verdict."
        )
        out.append("# TYPE labctl_proxy_inspected_items_total counter")
        for (signal, verdict), n in sorted(ins.items.items()):
            out.append(f'labctl_proxy_inspected_items_total{{signal="{signal}",verdict="{verdict}"}} {n}')
        out.append(
            "# HELP labctl_proxy_contract_violations_total Contract violations found, by signal and rule."
        )
        out.append("# TYPE labctl_proxy_contract_violations_total counter")
        for (signal, rule), n in sorted(ins.violation_rules.items()):
            out.append(f'labctl_proxy_contract_violations_total{{signal="{signal}",rule="{rule}"}} {n}')
        out.append(
            "# HELP labctl_proxy_events_total Events (log records with event.name) seen, by event name."
        )
        out.append("# TYPE labctl_proxy_events_total counter")
        for name, n in sorted(ins.events.items()):
            out.append(f'labctl_proxy_events_total{{event="{escape(name)}"}} {n}')
        out.append("# HELP labctl_proxy_sessions Claude Code sessions the proxy currently tracks.")
        out.append("# TYPE labctl_proxy_sessions gauge")
        out.append(f"labctl_proxy_sessions {len(ins.sessions.sessions)}")
        out.append(
            "# HELP labctl_proxy_alert_firing 1 while a threshold alert fires, 0 when resolved or inactive."
        )
        out.append("# TYPE labctl_proxy_alert_firing gauge")
        gauges = ins.alerts.gauges()
        from labctl.proxy.inspect.exposition import _fmt, _labels

        for labels, firing, _value in gauges:
            out.append(f"labctl_proxy_alert_firing{_labels(labels)} {firing}")
        out.append("# HELP labctl_proxy_alert_value The value an alert rule compares with its threshold.")
        out.append("# TYPE labctl_proxy_alert_value gauge")
        for labels, _firing, value in gauges:
            out.append(f"labctl_proxy_alert_value{_labels(labels)} {_fmt(value)}")
        log_dropped, log_pending = ins.log_stats()
        out.append(
            "# HELP labctl_proxy_inspect_log_dropped_total Records left out of the JSON Lines log because "
            "its writer process fell too far behind (the data itself was accepted)."
        )
        out.append("# TYPE labctl_proxy_inspect_log_dropped_total counter")
        out.append(f"labctl_proxy_inspect_log_dropped_total {log_dropped}")
        out.append(
            "# HELP labctl_proxy_inspect_log_pending_bytes Bytes waiting for the JSON Lines log writer."
        )
        out.append("# TYPE labctl_proxy_inspect_log_pending_bytes gauge")
        out.append(f"labctl_proxy_inspect_log_pending_bytes {log_pending}")
        out.append(
            "# HELP labctl_proxy_exposition_series_dropped_total Proxied series not shown: over max_series."
        )
        out.append("# TYPE labctl_proxy_exposition_series_dropped_total counter")
        out.append(f"labctl_proxy_exposition_series_dropped_total {ins.metrics.dropped_series}")
        return web.Response(text="\n".join(out) + "\n", headers={"Content-Type": CONTENT_TYPE})

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=_asset("openapi.json"), content_type="application/json")

    async def overview(_: web.Request) -> web.Response:
        ins.refresh()
        stats = stats_provider() if stats_provider is not None else {}
        info = ins.contract_info()
        return web.json_response(
            {
                "contract": {"name": info["name"], "path": info["path"], "dialect": info["dialect"]},
                "mode": stats.get("mode", ins.mode),
                "requests": ins.requests,
                "items": {f"{s}:{v}": n for (s, v), n in sorted(ins.items.items())},
                "violations_by_rule": {f"{s}:{r}": n for (s, r), n in sorted(ins.violation_rules.items())},
                "last_seq": ins.store.last_seq,
                "last_violation_seq": ins.store.last_violation_seq,
                "sessions": len(ins.sessions.sessions),
                "alerts_firing": sum(1 for a in ins.alerts.states.values() if a.state == "firing"),
                "log": ins.log_status(),
                "upstream": stats.get("upstream"),
                "counters": stats.get("counters"),
            }
        )

    async def payloads(request: web.Request) -> web.Response:
        after = _int(request, "after", 0, 0, 2**62)
        limit = _int(request, "limit", 50, 1, 1000)
        signal = _choice(request, "signal", _SIGNALS)
        verdict = _choice(request, "verdict", ("ok", "violation"))
        return web.json_response(
            {"last_seq": ins.store.last_seq, "payloads": ins.store.list(after, limit, signal, verdict)}
        )

    async def payload(request: web.Request) -> web.Response:
        raw = request.match_info["pid"]
        if not raw.isdigit() or len(raw) > 18:
            return _error(404, f"no payload {raw!r}: ids are the integers listed by /api/payloads")
        p = ins.store.get(int(raw))
        if p is None:
            return _error(404, f"payload {raw} is not (or no longer) in the ring buffer")
        return web.json_response(p)

    async def violations(request: web.Request) -> web.Response:
        after = _int(request, "after", 0, 0, 2**62)
        limit = _int(request, "limit", 100, 1, 1000)
        rule = request.query.get("rule") or None
        return web.json_response(
            {
                "last_seq": ins.store.last_violation_seq,
                "violations": ins.store.list_violations(after, limit, rule),
            }
        )

    async def sessions(_: web.Request) -> web.Response:
        return web.json_response({"sessions": ins.sessions.list()})

    async def session(request: web.Request) -> web.Response:
        s = ins.sessions.get(request.match_info["sid"])
        if s is None:
            return _error(404, f"no session {request.match_info['sid']!r} seen (yet)")
        return web.json_response(s.to_dict())

    async def alerts(_: web.Request) -> web.Response:
        ins.refresh()
        return web.json_response(ins.alerts.snapshot())

    async def contract(_: web.Request) -> web.Response:
        return web.json_response(ins.contract_info())

    async def contract_schema(_: web.Request) -> web.Response:
        from labctl.contract.schema import record_schema

        return web.json_response(record_schema(ins.contract))

    async def drift(_: web.Request) -> web.Response:
        return web.json_response(ins.drift())

    async def drift_switch(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or set(body) != {"recording"}
            or not isinstance(body["recording"], bool)
        ):
            return _error(
                400,
                'send {"recording": true} to start recording what the contract lacks, '
                '{"recording": false} to stop',
            )
        ins.set_recording(body["recording"])
        return web.json_response(ins.drift())

    async def drift_reset(_: web.Request) -> web.Response:
        ins.reset_drift()
        return web.json_response(ins.drift())

    async def export(request: web.Request) -> web.Response:
        fmt = _choice(request, "format", ("json", "csv"), "json")
        what = _choice(request, "what", ("sessions", "violations"), "sessions")
        if what == "sessions":
            rows = (
                [s.csv_row() for s in reversed(ins.sessions.sessions.values())]
                if fmt == "csv"
                else ins.sessions.list()
            )
            fields: tuple[str, ...] = CSV_FIELDS
        else:
            rows = ins.store.list_violations(0, 1000)
            fields = ("seq", "payload_id", "time", "signal", "name", "session_id", "path", "rule", "message")
        if fmt == "json":
            return web.json_response({what: rows})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        return web.Response(
            text=buf.getvalue(),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{what}.csv"'},
        )

    return [
        web.get("/", page),
        web.get("/static/{name}", static),
        web.get("/metrics", metrics),
        web.get("/api/openapi.json", openapi),
        web.get("/api/overview", guarded(overview)),
        web.get("/api/payloads", guarded(payloads)),
        web.get("/api/payloads/{pid}", guarded(payload)),
        web.get("/api/violations", guarded(violations)),
        web.get("/api/sessions", guarded(sessions)),
        web.get("/api/sessions/{sid}", guarded(session)),
        web.get("/api/alerts", guarded(alerts)),
        web.get("/api/contract", guarded(contract)),
        web.get("/api/contract/schema", guarded(contract_schema)),
        web.get("/api/contract/drift", guarded(drift)),
        web.put("/api/contract/drift", guarded(drift_switch)),
        web.delete("/api/contract/drift", guarded(drift_reset)),
        web.get("/api/export", guarded(export)),
    ]
