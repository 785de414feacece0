"""The receiver's HTTP side: Alertmanager posts to /api/alerts; students read / and /api/notifications."""

from __future__ import annotations

import html
import json
import logging
import time
from typing import Any

from aiohttp import web

from labctl.notify.store import BadNotification, Store, parse
from labctl.proxy import guard

log = logging.getLogger("labctl.notify")
MAX_BODY = 4 << 20  # Alertmanager's payloads are small; a larger body is not a notification


def make_app(store: Store, allowed_hosts: tuple[str, ...] = ("notify-receiver",)) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            record = parse(body)
        except ValueError as exc:  # not JSON, or BadNotification
            why = str(exc) if isinstance(exc, BadNotification) else f"the body is not JSON ({exc})"
            log.warning("rejected a notification: %s", why)
            return web.json_response({"error": why}, status=400)
        item = store.add(record)
        names = sorted({a["labels"].get("alertname", "?") for a in item["alerts"]})
        log.info("notification %d: %s %s", item["seq"], item["status"], ", ".join(names))
        return web.json_response({"seq": item["seq"]})

    async def notifications(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return web.json_response(
                {"error": "since must be a whole number (a seq seen before)"}, status=400
            )
        items = store.since(since)
        return web.json_response({"count": len(items), "last_seq": store.seq, "notifications": items})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "notifications": store.seq})

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=render(store), content_type="text/html")

    app = web.Application(middlewares=[guard.middleware("", allowed_hosts)], client_max_size=MAX_BODY)
    app.add_routes(
        [
            web.post("/api/alerts", receive),
            web.get("/api/notifications", notifications),
            web.get("/healthz", healthz),
            web.get("/", page),
        ]
    )
    return app


def _pairs(pairs: dict[str, str]) -> str:
    return " ".join(f"<code>{html.escape(k)}={html.escape(v)}</code>" for k, v in sorted(pairs.items()))


def render(store: Store) -> str:
    rows = []
    for item in reversed(store.since(0)[-200:]):
        when = time.strftime("%H:%M:%S", time.localtime(item["received_at"]))
        for alert in item["alerts"]:
            rows.append(
                f"<tr class='{html.escape(alert['status'])}'><td>{item['seq']}</td><td>{when}</td>"
                f"<td>{html.escape(alert['status'])}</td><td>{html.escape(item['receiver'])}</td>"
                f"<td>{_pairs(alert['labels'])}</td>"
                f"<td>{html.escape(alert['annotations'].get('summary', ''))}</td></tr>"
            )
    firing = [a for a in store.current().values() if a["status"] == "firing"]
    body = "\n".join(rows) or "<tr><td colspan=6>No notification yet: make an alert fire.</td></tr>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Lab notifications</title>
<style>body{{font-family:sans-serif;margin:1.5em}} td,th{{padding:.2em .5em;text-align:left;
vertical-align:top}} tr.firing td:nth-child(3){{color:#b00;font-weight:bold}}
tr.resolved td:nth-child(3){{color:#070}} code{{margin-right:.4em}}</style></head>
<body><h1>Notifications from Alertmanager</h1>
<p>{len(firing)} alert(s) firing as last notified; {store.seq} notification(s) received.
JSON: <a href="api/notifications">api/notifications</a>. The page reloads every 5 s.</p>
<table><tr><th>#</th><th>received</th><th>status</th><th>receiver</th><th>labels</th><th>summary</th></tr>
{body}
</table></body></html>
"""


def notification_count(items: list[dict[str, Any]], status: str, **labels: str) -> int:
    """How many alerts in these notifications have this status and these labels (tests and checks)."""
    return sum(
        1
        for item in items
        for alert in item["alerts"]
        if alert["status"] == status and all(alert["labels"].get(k) == v for k, v in labels.items())
    )
