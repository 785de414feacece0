"""Who may talk to the admin listener: a Host header check (always) and the lab's token (with `up --auth`).

Host check: a web page the student visits can make the browser reach 127.0.0.1 through DNS rebinding
(evil.example first resolves to the page's server, then to 127.0.0.1), but the browser still sends
`Host: evil.example`. So only IP literals, `localhost` and names the lab allows (its Docker service name)
are served; anything else gets 421 before any route runs.

Token: with a bearer token configured, every admin route except the health probes and /metrics (what
the runtimes' health checks and Prometheus read; counters only, no payloads) demands it, as an
`Authorization: Bearer` header (labctl's own commands) or the `labctl_token` cookie (the page). A browser
gets the cookie by opening the page once as `/?token=<token>` (what `labctl url proxy` prints): it is set
HttpOnly and SameSite=Strict, and the token is taken out of the address bar at once.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

COOKIE = "labctl_token"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_allowed(host_header: str | None, allowed: Iterable[str]) -> bool:
    """True for an IP literal, localhost, or an allowed name (any port); False for anything else."""
    if not host_header:
        return False  # HTTP/1.1 demands Host; a client that leaves it out is not one of ours
    host = host_header.strip()
    if host.startswith("["):  # [::1]:4320
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        ...
    return host == "localhost" or host in {a.lower() for a in allowed}


def token_matches(request: web.Request, token: str) -> bool:
    expected = token.encode()
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), expected)


def middleware(token: str | Callable[[], str], allowed_hosts: Iterable[str]) -> Middleware:
    """`token`: the token, or a function returning the current one (a proxy.yaml reload may change it)."""
    allowed = tuple(allowed_hosts)
    current_token = token if callable(token) else (lambda: token)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request.headers.get("Host"), allowed):
            return web.json_response(
                {
                    "error": f"unexpected Host header {request.headers.get('Host')!r}: this lab answers only "
                    "127.0.0.1, localhost and its own service names (DNS rebinding guard)"
                },
                status=421,
            )
        token = current_token()
        if not token or request.path in OPEN_PATHS:
            return await handler(request)
        offered = request.query.get("token")
        if offered is not None and request.method == "GET":
            if not hmac.compare_digest(offered.encode(), token.encode()):
                return _unauthorized()
            # Keep the token out of the address bar and history: cookie, then the same page without it.
            query = {k: v for k, v in request.query.items() if k != "token"}
            target = request.rel_url.with_query(query)
            resp = web.HTTPSeeOther(location=str(target))
            resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            return resp
        if not token_matches(request, token):
            return _unauthorized()
        return await handler(request)

    return guard


def _unauthorized() -> web.Response:
    return web.json_response(
        {
            "error": "this lab runs with auth on: send `Authorization: Bearer <token>`, or open the page at the address "
            "`labctl url proxy` prints (the token is in `labctl env`)"
        },
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="labctl"'},
    )
