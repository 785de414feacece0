"""The admin listener: the inspection side's routes (page, /api/*, /metrics) plus the transport's own
`/api/stats`, `/healthz` and `/readyz`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("labctl.proxy.admin")


def make_admin_app(stats_provider: Callable[[], dict[str, Any]], ready: Callable[[], tuple[bool, str]],
                   extra_routes: list[web.RouteDef]) -> web.Application:
    async def api_stats(_: web.Request) -> web.Response:
        return web.json_response(stats_provider())

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok, why = ready()
        body = {"ready": ok, "detail": why, "upstream": stats_provider()["upstream"]}
        return web.json_response(body, status=200 if ok else 503)

    mine = [web.get("/api/stats", api_stats), web.get("/healthz", healthz), web.get("/readyz", readyz)]
    taken = {(r.method, r.path) for r in mine}
    app = web.Application()
    app.add_routes(mine)
    for route in extra_routes:
        if (route.method, getattr(route, "path", None)) in taken:
            continue   # the transport answers these itself
        app.add_routes([route])
    return app
