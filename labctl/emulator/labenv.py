"""The environment block that points a real Claude Code (or `labctl emit --from-lab`) at the running lab.

`labctl env` prints it; `labctl emit --from-lab` applies the very same mapping, so the emulator and a real
Claude Code are configured identically.
"""

from __future__ import annotations

import shlex
from typing import Any

from labctl.errors import LabError
from labctl.state import LabState

PROTOCOL_PORT = {"grpc": "otlp_grpc", "http/protobuf": "otlp_http", "http/json": "otlp_http"}


def auth_token(lab: LabState) -> str | None:
    """The bearer token clients must send, when the lab's auth setting is on (else None).

    Two places say so: the lab's settings (`auth`/`auth_enabled` with `auth_token`), or an override that
    runs the proxy with LAB_PROXY_AUTH_TOKEN (what the proxy itself then demands)."""
    proxy_env = ((lab.overrides or {}).get("proxy") or {}).get("env") or {}
    if proxy_env.get("LAB_PROXY_AUTH_TOKEN"):
        return str(proxy_env["LAB_PROXY_AUTH_TOKEN"])
    s: dict[str, Any] = lab.settings or {}
    enabled = s.get("auth") or s.get("auth_enabled") or s.get("client_auth")
    token = s.get("auth_token")
    if isinstance(enabled, dict):  # {"enabled": true, "token": ...}
        token = enabled.get("token", token)
        enabled = enabled.get("enabled", True)
    return str(token) if enabled and token else None


def lab_env(lab: LabState, protocol: str = "grpc", metric_interval_ms: int = 5000,
            logs_interval_ms: int = 2000) -> dict[str, str]:
    if protocol not in PROTOCOL_PORT:
        raise LabError(f"unknown protocol {protocol!r}", "use grpc, http/protobuf or http/json")
    if "proxy" not in lab.ports:
        raise LabError("this lab has no proxy (the client's entry point)", "run `labctl up module-1` or later")
    env = {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        # The proxy listens on loopback: Claude Code runs on the same machine as the lab.
        "OTEL_EXPORTER_OTLP_ENDPOINT": lab.url("proxy", PROTOCOL_PORT[protocol]),
        # Short intervals so a student sees data within seconds (Claude Code's default is 60 s).
        "OTEL_METRIC_EXPORT_INTERVAL": str(metric_interval_ms),
        "OTEL_LOGS_EXPORT_INTERVAL": str(logs_interval_ms),
    }
    token = auth_token(lab)
    if token:
        # A literal space, not %20: Claude Code passes HTTP header values through as written, while the
        # OTel SDKs percent-decode; a plain space means the same to both.
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"Authorization=Bearer {token}"
    return env


def render(env: dict[str, str], shell: str = "sh") -> str:
    if shell == "fish":
        return "\n".join(f"set -gx {k} {shlex.quote(v)}" for k, v in env.items())
    if shell == "powershell":
        return "\n".join(f"$env:{k} = '{v}'" for k, v in env.items())
    if shell != "sh":
        raise LabError(f"unknown shell {shell!r}", "use sh (bash/zsh), fish or powershell")
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
