"""The admin listener: the inspection side's routes (page, /api/*, /metrics) plus the transport's own
`/api/stats`, `/healthz` and `/readyz`."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from labctl.proxy import guard

log = logging.getLogger("labctl.proxy.admin")


# PUT body (or None for DELETE), quiet -> (HTTP status, JSON answer). quiet: a hidden fault (blind
# challenge) retargets, so the proxy does not log the new endpoint.
Retarget = Callable[[Any, bool], Awaitable[tuple[int, dict[str, Any]]]]
# PUT /api/forwarding body -> (HTTP status, JSON answer)
Forwarding = Callable[[Any], Awaitable[tuple[int, dict[str, Any]]]]
# PUT /api/contract body (None for DELETE), quiet -> (HTTP status, JSON answer)
SwitchContract = Callable[[Any, bool], Awaitable[tuple[int, dict[str, Any]]]]
# POST /api/reload: read proxy.yaml again -> (HTTP status, JSON answer)
Reload = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
# POST /api/restart, quiet -> (HTTP status, JSON answer)
Restart = Callable[[bool], Awaitable[tuple[int, dict[str, Any]]]]


def make_admin_app(
    stats_provider: Callable[[], dict[str, Any]],
    ready: Callable[[], tuple[bool, str]],
    extra_routes: list[web.RouteDef],
    retarget: Retarget | None = None,
    token: str | Callable[[], str] = "",
    allowed_hosts: tuple[str, ...] = ("proxy",),
    reload: Reload | None = None,
    forwarding: Forwarding | None = None,
    switch_contract: SwitchContract | None = None,
    restart: Restart | None = None,
) -> web.Application:
    async def api_stats(_: web.Request) -> web.Response:
        return web.json_response(stats_provider())

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok, why = ready()
        body = {"ready": ok, "detail": why, "upstream": stats_provider()["upstream"]}
        return web.json_response(body, status=200 if ok else 503)

    async def put_upstream(request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            return web.json_response(
                {"error": 'the body is not JSON: send {"endpoint": "http://HOST:PORT"}'}, status=400
            )
        quiet = request.query.get("quiet") == "1"
        status, answer = await retarget(body, quiet) if retarget else (409, {"error": "no upstream"})
        return web.json_response(answer, status=status)

    async def delete_upstream(request: web.Request) -> web.Response:
        quiet = request.query.get("quiet") == "1"
        status, answer = await retarget(None, quiet) if retarget else (409, {"error": "no upstream"})
        return web.json_response(answer, status=status)

    async def post_reload(_: web.Request) -> web.Response:
        status, answer = await reload() if reload else (409, {"error": "this proxy cannot reload its config"})
        return web.json_response(answer, status=status)

    async def post_restart(request: web.Request) -> web.Response:
        quiet = request.query.get("quiet") == "1"
        status, answer = (
            await restart(quiet) if restart else (409, {"error": "this proxy cannot restart itself"})
        )
        return web.json_response(answer, status=status)

    async def put_forwarding(request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            return web.json_response({"error": 'the body is not JSON: send {"hold": true}'}, status=400)
        status, answer = await forwarding(body) if forwarding else (409, {"error": "no upstream"})
        return web.json_response(answer, status=status)

    async def put_contract(request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            return web.json_response({"error": 'the body is not JSON: send {"path": "FILE"}'}, status=400)
        quiet = request.query.get("quiet") == "1"
        status, answer = (
            await switch_contract(body, quiet) if switch_contract else (409, {"error": "no contract"})
        )
        return web.json_response(answer, status=status)

    async def delete_contract(request: web.Request) -> web.Response:
        quiet = request.query.get("quiet") == "1"
        status, answer = (
            await switch_contract(None, quiet) if switch_contract else (409, {"error": "no contract"})
        )
        return web.json_response(answer, status=status)

    mine = [
        web.get("/api/stats", api_stats),
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.put("/api/upstream", put_upstream),
        web.delete("/api/upstream", delete_upstream),
        web.post("/api/reload", post_reload),
        web.post("/api/restart", post_restart),
        web.put("/api/forwarding", put_forwarding),
        web.put("/api/contract", put_contract),
        web.delete("/api/contract", delete_contract),
    ]
    taken = {(r.method, r.path) for r in mine}
    app = web.Application(middlewares=[guard.middleware(token, allowed_hosts)])
    app.add_routes(mine)
    for route in extra_routes:
        if (route.method, getattr(route, "path", None)) in taken:
            continue  # the transport answers these itself
        app.add_routes([route])
    return app
