"""The environment block that points a real Claude Code (or `labctl emit --from-lab`) at the running lab.

`labctl env` prints it; `labctl emit --from-lab` applies the very same telemetry mapping (`lab_env`), so
the emulator and a real Claude Code are configured identically; `labctl claude` runs the pinned client
with the full block (`client_env`: telemetry plus the model the client talks to).
"""

from __future__ import annotations

import shlex
from typing import Any

from labctl.errors import LabError
from labctl.state import LabState

PROTOCOL_PORT = {"grpc": "otlp_grpc", "http/protobuf": "otlp_http", "http/json": "otlp_http"}
STUB_SERVICE = "model-stub"
TRACE_STORE = "jaeger"
# Claude Code sends spans only with its enhanced telemetry beta on and a traces exporter named. They go
# where metrics and logs go (OTEL_EXPORTER_OTLP_ENDPOINT/PROTOCOL; the client appends v1/traces over HTTP).
TRACES_ON = {"CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1", "OTEL_TRACES_EXPORTER": "otlp"}
# The stub accepts any key; this one says what it is, and no account has it.
STUB_API_KEY = "sk-ant-lab-model-stub-not-a-real-key"


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


def stores_traces(lab: LabState) -> bool:
    """The lab's stage runs the trace store (module 3 on): only there does the block switch spans on.

    Before it, spans would reach the proxy (module 1) or only the Collector's debug log (module 2), and
    nothing keeps them; the env command says how to switch them on anyway."""
    from labctl.model import load_model

    return bool(lab.stage) and TRACE_STORE in load_model().stage_services(lab.stage or "", lab.runtime)


def lab_env(
    lab: LabState,
    protocol: str = "grpc",
    metric_interval_ms: int = 5000,
    logs_interval_ms: int = 2000,
    traces_interval_ms: int = 2000,
) -> dict[str, str]:
    if protocol not in PROTOCOL_PORT:
        raise LabError(f"unknown protocol {protocol!r}", "use grpc, http/protobuf or http/json")
    if "proxy" not in lab.ports:
        raise LabError(
            "this lab has no proxy (the client's entry point)", "run `labctl up module-1` or later"
        )
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
    if stores_traces(lab):
        env.update(TRACES_ON)
        env["OTEL_TRACES_EXPORT_INTERVAL"] = str(traces_interval_ms)
    token = auth_token(lab)
    if token:
        # A literal space, not %20: Claude Code passes HTTP header values through as written, while the
        # OTel SDKs percent-decode; a plain space means the same to both.
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"Authorization=Bearer {token}"
    return env


def stub_running(lab: LabState) -> bool:
    """The lab's stage runs the model stub (every module does, unless the lab predates it)."""
    from labctl.model import load_model

    return (
        bool(lab.stage)
        and STUB_SERVICE in lab.ports
        and STUB_SERVICE in load_model().stage_services(lab.stage or "", lab.runtime)
    )


def model_env(lab: LabState, real_account: bool = False) -> dict[str, str | None]:
    """Where the client's model requests go: the lab's stub (a dummy key), or the user's own account.

    A None value means "unset it": a shell that pasted the stub's block earlier must not keep sending a
    real-account session to the stub."""
    if not real_account and stub_running(lab):
        return {"ANTHROPIC_BASE_URL": lab.url(STUB_SERVICE, "api"), "ANTHROPIC_API_KEY": STUB_API_KEY}
    return {"ANTHROPIC_BASE_URL": None}


def client_env(lab: LabState, protocol: str = "grpc", real_account: bool = False) -> dict[str, str | None]:
    """The whole block for a real Claude Code: telemetry to the proxy, model requests to the stub."""
    return {**lab_env(lab, protocol), **model_env(lab, real_account)}


def render(env: dict[str, str] | dict[str, str | None], shell: str = "sh") -> str:
    """Export lines for one shell; a None value unsets the variable."""
    if shell not in ("sh", "fish", "powershell"):
        raise LabError(f"unknown shell {shell!r}", "use sh (bash/zsh), fish or powershell")
    lines = []
    for k, v in env.items():
        if shell == "fish":
            lines.append(f"set -e {k}" if v is None else f"set -gx {k} {shlex.quote(v)}")
        elif shell == "powershell":
            lines.append(
                f"Remove-Item Env:{k} -ErrorAction SilentlyContinue" if v is None else f"$env:{k} = '{v}'"
            )
        else:
            lines.append(f"unset {k}" if v is None else f"export {k}={shlex.quote(v)}")
    return "\n".join(lines)
