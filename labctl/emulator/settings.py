"""Every OTEL_* / CLAUDE_CODE_* variable the emulator honours, read in this one module.

The rules are Claude Code's, not the Python SDK's: Claude Code builds its exporters itself on the
OpenTelemetry JS SDK, so
- `OTEL_METRICS_EXPORTER` / `OTEL_LOGS_EXPORTER` are comma lists; `none` entries are dropped; an
  unknown entry (including the deprecated `logging`) stops telemetry start-up with an error;
- `otlp` needs `OTEL_EXPORTER_OTLP_PROTOCOL` (or the per-signal variant): there is no default;
- intervals are read with JavaScript's `parseInt` (so "5s" means 5 ms and "abc" gives NaN, which
  Node's timers treat as 1 ms); a timeout that is not a positive number falls back to 10000 ms;
- temporality defaults to delta (Claude Code sets it when unset; the OTel default is cumulative);
- the HTTP endpoint gets `v1/metrics` / `v1/logs` appended, a per-signal endpoint is used as is, and
  an unparseable URL silently falls back to http://localhost:4318 (the JS SDK only logs that at
  "warn", which Claude Code's diagnostic logger hides);
- gRPC uses only host:port of the URL; no scheme means TLS.

`load_settings(env)` returns a typed `Settings` plus the notices a student should see. Values that make
Claude Code fail raise `TelemetryConfigError` carrying Claude Code's own message.

Over 500 lines because every variable the emulator honours is read here and nowhere else: one
place to compare with Claude Code's rules, each with its own fallback and notice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from labctl.errors import LabError

Signal = Literal["metrics", "logs", "traces"]
PROTOCOLS = ("grpc", "http/protobuf", "http/json")
METRICS_EXPORTERS = ("otlp", "prometheus", "console")
LOGS_EXPORTERS = ("otlp", "console")
TRACES_EXPORTERS = ("otlp", "console")
# Claude Code sends spans only with one of these switched on (its "enhanced telemetry" beta).
TRACING_SWITCHES = (
    "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA",
    "ENABLE_ENHANCED_TELEMETRY_BETA",
    "ENABLE_BETA_TRACING_DETAILED",
)
DEFAULT_TRACES_INTERVAL_MS = 5000
DEFAULT_METRIC_INTERVAL_MS = 60000
DEFAULT_LOGS_INTERVAL_MS = 5000
DEFAULT_TIMEOUT_MS = 10000
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_PROMETHEUS_PORT = 9464


class TelemetryConfigError(LabError):
    """A value that makes Claude Code's telemetry start-up throw. `cc_message` is Claude Code's text."""

    def __init__(self, cc_message: str, hint: str) -> None:
        super().__init__(f"Claude Code would fail to start telemetry: {cc_message}", hint)
        self.cc_message = cc_message


@dataclass(frozen=True)
class Notice:
    level: Literal["warning", "info"]
    variable: str
    message: str


@dataclass(frozen=True)
class OtlpTarget:
    """Where one signal's OTLP exporter sends, fully resolved."""

    protocol: str
    url: str  # HTTP: the full URL with path; gRPC: the URL as given (scheme kept for display)
    grpc_target: str | None  # gRPC only: host:port
    tls: bool
    headers: dict[str, str]
    timeout_ms: int
    compression: str  # none | gzip


@dataclass(frozen=True)
class Settings:
    telemetry_enabled: bool
    metrics_exporters: tuple[str, ...]
    logs_exporters: tuple[str, ...]
    metrics_otlp: OtlpTarget | None
    logs_otlp: OtlpTarget | None
    metric_interval_ms: int
    logs_interval_ms: int
    temporality: Literal["delta", "cumulative", "lowmemory"]
    resource_attributes: dict[str, str]
    include_session_id: bool
    include_version: bool
    include_account_uuid: bool
    include_resource_attributes: bool
    log_user_prompts: bool
    log_tool_details: bool
    prometheus_host: str
    prometheus_port: int
    ca_certificate: str | None
    service_name: str | None = None  # OTEL_SERVICE_NAME (the JS env detector lets it override claude-code)
    shutdown_timeout_ms: int = 2000  # CLAUDE_CODE_OTEL_SHUTDOWN_TIMEOUT_MS: how long the exit flush may take
    traces_exporters: tuple[str, ...] = ()  # OTEL_TRACES_EXPORTER, only with a TRACING_SWITCHES variable on
    traces_otlp: OtlpTarget | None = None
    traces_interval_ms: int = DEFAULT_TRACES_INTERVAL_MS
    custom_base_url: bool = (
        False  # ANTHROPIC_BASE_URL is set (the lab's model stub): anthropic.custom_base_url
    )
    notices: tuple[Notice, ...] = field(default=())

    @property
    def exports_anything(self) -> bool:
        return self.telemetry_enabled and bool(
            self.metrics_exporters or self.logs_exporters or self.traces_exporters
        )

    def describe(self) -> dict[str, object]:
        """A redacted, printable view (header values are never shown)."""

        def target(t: OtlpTarget | None) -> dict[str, object] | None:
            if t is None:
                return None
            return {
                "protocol": t.protocol,
                "url": t.url,
                "tls": t.tls,
                "headers": sorted(t.headers),
                "timeout_ms": t.timeout_ms,
                "compression": t.compression,
            }

        return {
            "telemetry_enabled": self.telemetry_enabled,
            "metrics_exporters": list(self.metrics_exporters),
            "logs_exporters": list(self.logs_exporters),
            "metrics_otlp": target(self.metrics_otlp),
            "logs_otlp": target(self.logs_otlp),
            "traces_exporters": list(self.traces_exporters),
            "traces_otlp": target(self.traces_otlp),
            "metric_interval_ms": self.metric_interval_ms,
            "logs_interval_ms": self.logs_interval_ms,
            "temporality": self.temporality,
            "resource_attributes": sorted(self.resource_attributes),
            "prometheus": f"{self.prometheus_host}:{self.prometheus_port}"
            if "prometheus" in self.metrics_exporters
            else None,
        }


# --- small parsers, each mirroring the JavaScript behaviour Claude Code inherits -------------------


def env_truthy(value: str | None) -> bool:
    """Claude Code's isEnvTruthy: 1/true/yes/on, any case."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def js_parse_int(text: str) -> float:
    """JavaScript parseInt(text, 10): leading whitespace, optional sign, leading digits; else NaN."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return float(int(m.group(1))) if m else math.nan


def parse_exporter_list(value: str | None) -> tuple[str, ...]:
    """Claude Code's parseExporterTypes: split on commas, trim, drop empties and `none`."""
    items = [t.strip() for t in (value or "").strip().split(",")]
    return tuple(t for t in items if t and t != "none")


def parse_key_values(value: str, variable: str, notices: list[Notice]) -> dict[str, str]:
    """`k=v,k2=v2` with percent-decoding (OTel spec). Entries without `=` or with an empty key are
    skipped, as the JS SDK skips them (silently; here with a notice so a student sees why)."""
    out: dict[str, str] = {}
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        key, sep, val = entry.partition("=")
        key = key.strip()
        if not sep or not key:
            notices.append(
                Notice(
                    "warning",
                    variable,
                    f"entry {_redact_entry(entry)!r} is not key=value: it is skipped (Claude Code drops it "
                    "without a message, so the receiver never sees it)",
                )
            )
            continue
        out[unquote(key)] = unquote(val.strip())
    return out


def _redact_entry(entry: str) -> str:
    # A malformed header entry may still contain a secret (e.g. "Bearer abc"): show its shape only.
    return entry if len(entry) <= 6 else entry[:3] + "…" + f"({len(entry)} chars)"


def _js_url_parses(url: str) -> bool:
    """Roughly WHATWG `new URL(url)`: needs a scheme; http(s) also need a host."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", url.strip())
    if not m:
        return False
    scheme = m.group(1).lower()
    if scheme in {"http", "https"}:
        try:
            parts = urlsplit(url.strip())
            _ = parts.port  # raises on a non-numeric port
        except ValueError:
            return False
        return bool(parts.hostname)
    return True


def _first(env: Mapping[str, str], *names: str) -> tuple[str | None, str | None]:
    """The first set, non-blank variable among `names` (Claude Code uses `?.trim() ||`)."""
    for name in names:
        v = env.get(name)
        if v is not None and v.strip():
            return v.strip(), name
    return None, None


# --- the resolution -------------------------------------------------------------------------------


def _interval(env: Mapping[str, str], name: str, default: int, notices: list[Notice]) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = js_parse_int(raw)
    if math.isnan(value):
        notices.append(
            Notice(
                "warning",
                name,
                f"{raw!r} is not a number: Claude Code's parseInt gives NaN and Node runs the export timer "
                "every 1 ms — a flood of exports. Use milliseconds, e.g. 5000",
            )
        )
        return 1
    if value <= 0:
        raise TelemetryConfigError(
            "exportIntervalMillis must be greater than 0"
            if name == "OTEL_METRIC_EXPORT_INTERVAL"
            else f"{name} must be greater than 0",
            f"set {name} to a positive number of milliseconds, e.g. 5000",
        )
    if str(int(value)) != raw.strip().lstrip("+"):
        notices.append(
            Notice(
                "warning",
                name,
                f"{raw!r} is read by parseInt as {int(value)} ms (units are not understood: the value is "
                "always milliseconds)",
            )
        )
    return int(value)


def _timeout(env: Mapping[str, str], signal: Signal, notices: list[Notice]) -> int:
    raw, name = _first(env, f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    if raw is None or name is None:
        return DEFAULT_TIMEOUT_MS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value > 0:
        return int(value)
    notices.append(
        Notice(
            "warning",
            name,
            f"{raw!r} is invalid, expected a number greater than 0: the exporter uses the default "
            f"{DEFAULT_TIMEOUT_MS} ms (Claude Code hides this warning)",
        )
    )
    return DEFAULT_TIMEOUT_MS


def _headers(env: Mapping[str, str], signal: Signal, notices: list[Notice]) -> dict[str, str]:
    headers: dict[str, str] = {}
    general = env.get("OTEL_EXPORTER_OTLP_HEADERS")
    if general:
        headers.update(parse_key_values(general, "OTEL_EXPORTER_OTLP_HEADERS", notices))
    specific_name = f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS"
    specific = env.get(specific_name)
    if specific:
        headers.update(parse_key_values(specific, specific_name, notices))
    return headers


def _otlp_target(env: Mapping[str, str], signal: Signal, notices: list[Notice]) -> OtlpTarget:
    up = signal.upper()
    protocol, _ = _first(env, f"OTEL_EXPORTER_OTLP_{up}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol not in PROTOCOLS:
        shown = "undefined" if protocol is None else protocol
        raise TelemetryConfigError(
            f"Unknown protocol set in OTEL_EXPORTER_OTLP_{up}_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL "
            f"env var: {shown}",
            "set OTEL_EXPORTER_OTLP_PROTOCOL to grpc, http/protobuf or http/json (Claude Code has no default)",
        )
    specific, specific_name = _first(env, f"OTEL_EXPORTER_OTLP_{up}_ENDPOINT")
    general, _ = _first(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    insecure_env = (
        env.get(f"OTEL_EXPORTER_OTLP_{up}_INSECURE") or env.get("OTEL_EXPORTER_OTLP_INSECURE") or ""
    )
    compression_raw = (
        (
            env.get(f"OTEL_EXPORTER_OTLP_{up}_COMPRESSION")
            or env.get("OTEL_EXPORTER_OTLP_COMPRESSION")
            or "none"
        )
        .strip()
        .lower()
    )
    if compression_raw not in {"none", "gzip"}:
        notices.append(
            Notice(
                "warning",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
                f"{compression_raw!r} is not supported (none, gzip): sending uncompressed",
            )
        )
        compression_raw = "none"

    if protocol == "grpc":
        url = specific or general or DEFAULT_GRPC_ENDPOINT
        has_scheme = re.match(r"^[\w]{1,8}://", url) is not None
        full = url if has_scheme else f"https://{url}"
        parts = urlsplit(full)
        if parts.path not in ("", "/"):
            notices.append(
                Notice(
                    "warning",
                    specific_name or "OTEL_EXPORTER_OTLP_ENDPOINT",
                    f"gRPC ignores the URL path {parts.path!r}: only host:port is used",
                )
            )
        scheme = parts.scheme.lower()
        if has_scheme:
            tls = scheme == "https"
            if scheme not in ("http", "https"):
                notices.append(
                    Notice(
                        "warning",
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        f"URL scheme {scheme!r} should be http(s)://: using http://",
                    )
                )
                tls = False
        else:
            tls = insecure_env.strip().lower() != "true"
            if tls:
                notices.append(
                    Notice(
                        "warning",
                        specific_name or "OTEL_EXPORTER_OTLP_ENDPOINT",
                        f"{url!r} has no scheme: gRPC then uses TLS (as https://). Write http://{url} for a "
                        "plaintext receiver",
                    )
                )
        try:
            port = parts.port
        except ValueError:
            port = None
        host = parts.hostname or "localhost"
        target = f"{host}:{port or (443 if tls else 80)}"
        return OtlpTarget(
            protocol,
            url,
            target,
            tls,
            _headers(env, signal, notices),
            _timeout(env, signal, notices),
            compression_raw,
        )

    # HTTP protocols
    path = f"v1/{signal}"
    http_url: str | None = None
    if specific is not None:
        if _js_url_parses(specific):
            http_url = specific
        else:
            notices.append(
                Notice(
                    "warning",
                    specific_name or "",
                    (
                        f"could not parse the export URL {specific!r}: falling back (Claude Code hides this warning)"
                    ),
                )
            )
    if http_url is None and general is not None:
        if _js_url_parses(general):
            http_url = (general if general.endswith("/") else general + "/") + path
        else:
            notices.append(
                Notice(
                    "warning",
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    (
                        f"could not parse the export URL {general!r}: the exporter silently falls back to "
                        f"{DEFAULT_HTTP_ENDPOINT}/{path} (Claude Code hides this warning). Write a full URL such as "
                        "http://127.0.0.1:4318"
                    ),
                )
            )
    if http_url is None:
        http_url = f"{DEFAULT_HTTP_ENDPOINT}/{path}"
    tls = urlsplit(http_url).scheme.lower() == "https"
    return OtlpTarget(
        protocol,
        http_url,
        None,
        tls,
        _headers(env, signal, notices),
        _timeout(env, signal, notices),
        compression_raw,
    )


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return env_truthy(raw)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Resolve the emulator's configuration from environment variables exactly as Claude Code does."""
    notices: list[Notice] = []
    enabled = env_truthy(env.get("CLAUDE_CODE_ENABLE_TELEMETRY"))
    metrics_exporters = parse_exporter_list(env.get("OTEL_METRICS_EXPORTER"))
    logs_exporters = parse_exporter_list(env.get("OTEL_LOGS_EXPORTER"))
    if not enabled:
        notices.append(
            Notice(
                "warning",
                "CLAUDE_CODE_ENABLE_TELEMETRY",
                "is not 1: Claude Code exports no telemetry at all, and says nothing about it",
            )
        )
    metrics_otlp = logs_otlp = None
    if enabled:
        for exp in metrics_exporters:
            if exp not in METRICS_EXPORTERS:
                hint = "use otlp, prometheus, console or none (a comma list is allowed)"
                if exp == "logging":
                    hint = (
                        "`logging` is deprecated in the OpenTelemetry spec and unknown to Claude Code: "
                        "use console to print metrics locally"
                    )
                # Claude Code's message names the PROTOCOL variables here (its own wording).
                raise TelemetryConfigError(
                    "Unknown exporter type set in OTEL_EXPORTER_OTLP_METRICS_PROTOCOL or "
                    f"OTEL_EXPORTER_OTLP_PROTOCOL env var: {exp}",
                    f"the bad value is in OTEL_METRICS_EXPORTER; {hint}",
                )
        for exp in logs_exporters:
            if exp not in LOGS_EXPORTERS:
                hint = "use otlp, console or none"
                if exp == "logging":
                    hint = "`logging` is deprecated and unknown to Claude Code: use console"
                if exp == "prometheus":
                    hint = "events are logs, which Prometheus cannot receive: use otlp or console"
                raise TelemetryConfigError(
                    f"Unknown exporter type set in OTEL_LOGS_EXPORTER env var: {exp}", hint
                )
        if "otlp" in metrics_exporters:
            metrics_otlp = _otlp_target(env, "metrics", notices)
        if "otlp" in logs_exporters:
            logs_otlp = _otlp_target(env, "logs", notices)
        if not metrics_exporters and not logs_exporters:
            notices.append(
                Notice(
                    "warning",
                    "OTEL_METRICS_EXPORTER",
                    "no metrics or logs exporter is set: nothing is exported",
                )
            )
        elif not logs_exporters:
            notices.append(
                Notice(
                    "info",
                    "OTEL_LOGS_EXPORTER",
                    "not set: the events (user_prompt, api_request, ...) are not exported",
                )
            )

    traces_exporters: tuple[str, ...] = ()
    traces_otlp = None
    tracing = any(env_truthy(env.get(name)) for name in TRACING_SWITCHES)
    requested_traces = parse_exporter_list(env.get("OTEL_TRACES_EXPORTER"))
    if enabled and requested_traces and not tracing:
        notices.append(
            Notice(
                "info",
                "OTEL_TRACES_EXPORTER",
                "is set, but Claude Code sends spans only with CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1",
            )
        )
    elif enabled and tracing:
        for exp in requested_traces:
            if exp not in TRACES_EXPORTERS:
                raise TelemetryConfigError(
                    f"Unknown exporter type set in OTEL_TRACES_EXPORTER env var: {exp}",
                    "use otlp, console or none",
                )
        traces_exporters = requested_traces
        if "otlp" in traces_exporters:
            traces_otlp = _otlp_target(env, "traces", notices)
        if not traces_exporters:
            notices.append(
                Notice(
                    "info",
                    "OTEL_TRACES_EXPORTER",
                    "not set: the enhanced telemetry beta is on, but no spans are exported",
                )
            )

    # Claude Code reads the intervals only while building its exporters, i.e. with telemetry on.
    metric_interval, logs_interval = DEFAULT_METRIC_INTERVAL_MS, DEFAULT_LOGS_INTERVAL_MS
    if enabled:
        metric_interval = _interval(env, "OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_METRIC_INTERVAL_MS, notices)
        logs_interval = _interval(env, "OTEL_LOGS_EXPORT_INTERVAL", DEFAULT_LOGS_INTERVAL_MS, notices)
    traces_interval = DEFAULT_TRACES_INTERVAL_MS
    if traces_exporters:
        traces_interval = _interval(env, "OTEL_TRACES_EXPORT_INTERVAL", DEFAULT_TRACES_INTERVAL_MS, notices)

    temporality_raw = (env.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") or "").strip()
    temporality: Literal["delta", "cumulative", "lowmemory"]
    if not temporality_raw:
        temporality = "delta"  # Claude Code sets delta when unset
    elif temporality_raw.lower() in ("delta", "cumulative", "lowmemory"):
        temporality = temporality_raw.lower()  # type: ignore[assignment]
    else:
        notices.append(
            Notice(
                "warning",
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                f"{temporality_raw!r} is not cumulative, delta or lowmemory: using cumulative",
            )
        )
        temporality = "cumulative"

    resource_attributes = parse_key_values(
        env.get("OTEL_RESOURCE_ATTRIBUTES") or "", "OTEL_RESOURCE_ATTRIBUTES", notices
    )
    bad_keys = [k for k in resource_attributes if " " in k]
    for k in bad_keys:
        notices.append(Notice("warning", "OTEL_RESOURCE_ATTRIBUTES", f"key {k!r} contains a space: skipped"))
        resource_attributes.pop(k)

    prom_port_raw = env.get("OTEL_EXPORTER_PROMETHEUS_PORT") or str(DEFAULT_PROMETHEUS_PORT)
    try:
        prom_port = int(prom_port_raw)
        if not 0 <= prom_port <= 65535:
            raise ValueError
    except ValueError:
        notices.append(
            Notice(
                "warning",
                "OTEL_EXPORTER_PROMETHEUS_PORT",
                f"{prom_port_raw!r} is not a port: using {DEFAULT_PROMETHEUS_PORT}",
            )
        )
        prom_port = DEFAULT_PROMETHEUS_PORT

    ca, _ = _first(env, "OTEL_EXPORTER_OTLP_CERTIFICATE", "NODE_EXTRA_CA_CERTS")
    shutdown_raw = env.get("CLAUDE_CODE_OTEL_SHUTDOWN_TIMEOUT_MS") or "2000"
    shutdown_ms = js_parse_int(shutdown_raw)
    if math.isnan(shutdown_ms) or shutdown_ms < 0:
        notices.append(
            Notice(
                "warning",
                "CLAUDE_CODE_OTEL_SHUTDOWN_TIMEOUT_MS",
                f"{shutdown_raw!r} is not a number of milliseconds: the exit flush gets no time",
            )
        )
        shutdown_ms = 0
    return Settings(
        telemetry_enabled=enabled,
        metrics_exporters=metrics_exporters if enabled else (),
        logs_exporters=logs_exporters if enabled else (),
        metrics_otlp=metrics_otlp,
        logs_otlp=logs_otlp,
        metric_interval_ms=metric_interval,
        logs_interval_ms=logs_interval,
        temporality=temporality,
        resource_attributes=resource_attributes,
        include_session_id=_switch(env, "OTEL_METRICS_INCLUDE_SESSION_ID", True),
        include_version=_switch(env, "OTEL_METRICS_INCLUDE_VERSION", False),
        include_account_uuid=_switch(env, "OTEL_METRICS_INCLUDE_ACCOUNT_UUID", True),
        include_resource_attributes=_switch(env, "OTEL_METRICS_INCLUDE_RESOURCE_ATTRIBUTES", True),
        log_user_prompts=env_truthy(env.get("OTEL_LOG_USER_PROMPTS")),
        log_tool_details=env_truthy(env.get("OTEL_LOG_TOOL_DETAILS")),
        # Claude Code's Prometheus exporter listens on every interface; the lab binds loopback by default.
        prometheus_host=(env.get("OTEL_EXPORTER_PROMETHEUS_HOST") or "127.0.0.1").strip(),
        prometheus_port=prom_port,
        ca_certificate=ca,
        service_name=(env.get("OTEL_SERVICE_NAME") or "").strip() or None,
        shutdown_timeout_ms=int(shutdown_ms),
        traces_exporters=traces_exporters,
        traces_otlp=traces_otlp,
        traces_interval_ms=traces_interval,
        custom_base_url=bool((env.get("ANTHROPIC_BASE_URL") or "").strip()),
        notices=tuple(notices),
    )
