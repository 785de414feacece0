"""Change the proxy's upstream while it runs (`PUT /api/upstream`), and go back to the configured one
(`DELETE /api/upstream`).

Why: the lab's faults on the proxy → Collector hop used to restart the proxy with a new env, which reset
its counters, its inspector history and its retry state. Changing the forwarder's target in place keeps
all of that; the spool is untouched (nothing acknowledged is lost) and the configured upstream is kept,
so a DELETE restores it exactly.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from labctl.errors import LabError
from labctl.proxy.config import UpstreamSettings, _Section, _upstream

WHERE = "PUT /api/upstream"
KEYS = ("endpoint", "protocol", "headers")


def retargeted(configured: UpstreamSettings, current: UpstreamSettings, body: Any) -> UpstreamSettings:
    """The settings a PUT body asks for: given keys replace the current ones, the rest (timeout,
    retry, batching) stays as configured. LabError names what is wrong with the body."""
    section = _Section(body, WHERE, KEYS)  # a mapping, no unknown keys
    endpoint = section.get("endpoint", current.endpoint)
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise LabError(
            f"{WHERE}: endpoint must be a non-empty http(s) URL",
            'e.g. {"endpoint": "http://127.0.0.1:4317"}; DELETE /api/upstream restores the configured one',
        )
    headers = section.get("headers", None)
    if headers is not None and not isinstance(headers, (str, dict)):
        raise LabError(
            f"{WHERE}: headers must be a string k=v,k2=v2 or an object", 'e.g. "authorization=Bearer%20x"'
        )
    protocol = section.get("protocol", current.protocol)
    if not isinstance(protocol, str):
        raise LabError(f"{WHERE}: protocol must be grpc or http/protobuf", 'e.g. {"protocol": "grpc"}')
    parsed = _upstream(
        _Section(
            {"endpoint": endpoint.strip(), "protocol": protocol, "headers": headers or ""},
            WHERE.split()[1],
            KEYS,
        )
    )
    return replace(
        configured,
        endpoint=parsed.endpoint,
        protocol=parsed.protocol,
        headers=parsed.headers if headers is not None else current.headers,
    )


def describe(settings: UpstreamSettings, configured: UpstreamSettings) -> dict[str, Any]:
    """What GET/PUT/DELETE answer: header *names* only (values may be tokens)."""
    from labctl.proxy.upstream import safe_endpoint

    return {
        "endpoint": safe_endpoint(settings.endpoint),
        "protocol": settings.protocol,
        "header_names": sorted(settings.headers),
        "configured": settings == configured,
    }
