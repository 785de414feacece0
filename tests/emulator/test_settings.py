"""Environment-variable handling, table-driven: each row is what a Claude Code user sets and what they get.

Expected outcomes follow Claude Code's own telemetry start-up (its JS code builds the exporters) and the
OpenTelemetry JS SDK it uses; the messages quoted are Claude Code's.
"""

from __future__ import annotations

from typing import Any

import pytest

from labctl.emulator.settings import TelemetryConfigError, js_parse_int, load_settings

BASE = {"CLAUDE_CODE_ENABLE_TELEMETRY": "1"}


def settings(**env: str) -> Any:
    return load_settings({**BASE, **env})


def notices(s: Any) -> str:
    return "\n".join(f"{n.variable}: {n.message}" for n in s.notices)


# ---- values Claude Code refuses at start (the same message a user sees) ------------------------------------

REFUSED = [
    (
        "logging exporter",
        {"OTEL_METRICS_EXPORTER": "logging"},
        "Unknown exporter type set in OTEL_EXPORTER_OTLP_METRICS_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL env var: logging",
    ),
    (
        "unknown exporter in a list",
        {"OTEL_METRICS_EXPORTER": "console,otlp_proto_http"},
        (
            "Unknown exporter type set in OTEL_EXPORTER_OTLP_METRICS_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL env var: "
            "otlp_proto_http"
        ),
    ),
    (
        "unknown logs exporter",
        {"OTEL_LOGS_EXPORTER": "jaeger"},
        "Unknown exporter type set in OTEL_LOGS_EXPORTER env var: jaeger",
    ),
    (
        "prometheus for logs",
        {"OTEL_LOGS_EXPORTER": "prometheus"},
        "Unknown exporter type set in OTEL_LOGS_EXPORTER env var: prometheus",
    ),
    (
        "otlp without protocol",
        {"OTEL_METRICS_EXPORTER": "otlp"},
        "Unknown protocol set in OTEL_EXPORTER_OTLP_METRICS_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL env var: undefined",
    ),
    (
        "blank protocol counts as unset",
        {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "  "},
        "env var: undefined",
    ),
    (
        "unknown protocol",
        {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http"},
        "env var: http",
    ),
    (
        "protocol case matters",
        {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC"},
        "env var: GRPC",
    ),
    (
        "logs protocol unknown",
        {"OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "thrift"},
        "Unknown protocol set in OTEL_EXPORTER_OTLP_LOGS_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL env var: thrift",
    ),
    ("interval zero", {"OTEL_METRIC_EXPORT_INTERVAL": "0"}, "exportIntervalMillis must be greater than 0"),
    (
        "negative interval",
        {"OTEL_METRIC_EXPORT_INTERVAL": "-5"},
        "exportIntervalMillis must be greater than 0",
    ),
]


@pytest.mark.parametrize(("name", "env", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_values_raise_claude_codes_error(name: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(TelemetryConfigError) as info:
        settings(**env)
    assert message in info.value.cc_message
    assert info.value.hint  # every refusal says what to do


def test_logging_hint_points_to_console() -> None:
    with pytest.raises(TelemetryConfigError) as info:
        settings(OTEL_METRICS_EXPORTER="logging")
    assert "console" in (info.value.hint or "")


def test_bad_values_do_not_matter_while_telemetry_is_off() -> None:
    # Claude Code only builds exporters when CLAUDE_CODE_ENABLE_TELEMETRY is truthy.
    s = load_settings(
        {
            "OTEL_METRICS_EXPORTER": "logging",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "bogus",
            "OTEL_METRIC_EXPORT_INTERVAL": "0",
        }
    )
    assert not s.telemetry_enabled and not s.exports_anything
    assert "CLAUDE_CODE_ENABLE_TELEMETRY" in notices(s)


# ---- accepted values and their resolution -----------------------------------------------------------------

ACCEPTED: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "defaults",
        {},
        {
            "metrics_exporters": (),
            "metric_interval_ms": 60000,
            "logs_interval_ms": 5000,
            "temporality": "delta",
            "include_session_id": True,
            "include_version": False,
            "include_account_uuid": True,
            "log_user_prompts": False,
            "prometheus_port": 9464,
        },
    ),
    (
        "comma list with none",
        {"OTEL_METRICS_EXPORTER": "console, none ,prometheus"},
        {"metrics_exporters": ("console", "prometheus")},
    ),
    (
        "only none",
        {"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"},
        {"metrics_exporters": (), "logs_exporters": ()},
    ),
    ("truthy spellings", {"CLAUDE_CODE_ENABLE_TELEMETRY": "true"}, {"telemetry_enabled": True}),
    ("zero is off", {"CLAUDE_CODE_ENABLE_TELEMETRY": "0"}, {"telemetry_enabled": False}),
    ("interval parsed like parseInt", {"OTEL_METRIC_EXPORT_INTERVAL": "5000"}, {"metric_interval_ms": 5000}),
    ("interval with units is milliseconds", {"OTEL_METRIC_EXPORT_INTERVAL": "5s"}, {"metric_interval_ms": 5}),
    (
        "non-numeric interval is NaN: 1 ms timer",
        {"OTEL_METRIC_EXPORT_INTERVAL": "abc"},
        {"metric_interval_ms": 1},
    ),
    ("logs interval", {"OTEL_LOGS_EXPORT_INTERVAL": "250"}, {"logs_interval_ms": 250}),
    (
        "temporality cumulative",
        {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Cumulative"},
        {"temporality": "cumulative"},
    ),
    (
        "temporality invalid → cumulative",
        {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "sometimes"},
        {"temporality": "cumulative"},
    ),
    (
        "switches",
        {
            "OTEL_METRICS_INCLUDE_SESSION_ID": "false",
            "OTEL_METRICS_INCLUDE_VERSION": "1",
            "OTEL_METRICS_INCLUDE_ACCOUNT_UUID": "0",
        },
        {"include_session_id": False, "include_version": True, "include_account_uuid": False},
    ),
    (
        "resource attributes percent-decoded",
        {"OTEL_RESOURCE_ATTRIBUTES": "team=blue%2Cgreen,cost.center=a%3Db"},
        {"resource_attributes": {"team": "blue,green", "cost.center": "a=b"}},
    ),
    ("prompts opt-in", {"OTEL_LOG_USER_PROMPTS": "1"}, {"log_user_prompts": True}),
    ("prometheus port", {"OTEL_EXPORTER_PROMETHEUS_PORT": "19464"}, {"prometheus_port": 19464}),
    ("service name override", {"OTEL_SERVICE_NAME": "cc-lab"}, {"service_name": "cc-lab"}),
]


@pytest.mark.parametrize(("name", "env", "expected"), ACCEPTED, ids=[r[0] for r in ACCEPTED])
def test_accepted_values(name: str, env: dict[str, str], expected: dict[str, Any]) -> None:
    s = settings(**env)
    for key, value in expected.items():
        assert getattr(s, key) == value, key


NOTICED = [
    ("units in interval", {"OTEL_METRIC_EXPORT_INTERVAL": "10s"}, "parseInt as 10 ms"),
    ("NaN interval", {"OTEL_METRIC_EXPORT_INTERVAL": "abc"}, "every 1 ms"),
    (
        "bad timeout",
        {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "soon",
        },
        "default 10000 ms",
    ),
    (
        "malformed header",
        {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_HEADERS": "invalid-auth-token",
        },
        "not key=value",
    ),
    ("bad temporality", {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "x"}, "using cumulative"),
    ("no logs exporter", {"OTEL_METRICS_EXPORTER": "console"}, "events"),
    (
        "gRPC without scheme",
        {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4317",
        },
        "uses TLS",
    ),
    (
        "unparseable HTTP URL",
        {
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "invalid-endpoint",
        },
        "falls back",
    ),
    ("bad prometheus port", {"OTEL_EXPORTER_PROMETHEUS_PORT": "ninety"}, "not a port"),
]


@pytest.mark.parametrize(("name", "env", "fragment"), NOTICED, ids=[r[0] for r in NOTICED])
def test_accepted_with_a_clear_notice(name: str, env: dict[str, str], fragment: str) -> None:
    assert fragment in notices(settings(**env))


def test_malformed_header_never_echoes_the_secret() -> None:
    s = settings(
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_HEADERS="Bearer-s3cr3t-token-value",
    )
    assert "s3cr3t-token-value" not in notices(s)


# ---- endpoints: the per-signal path rule and gRPC's host:port --------------------------------------------

ENDPOINTS = [
    (
        "http base gets /v1/<signal>",
        "http/protobuf",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
        "http://collector:4318/v1/metrics",
        "http://collector:4318/v1/logs",
    ),
    (
        "trailing slash",
        "http/json",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"},
        "http://c:4318/v1/metrics",
        "http://c:4318/v1/logs",
    ),
    (
        "base path kept",
        "http/protobuf",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.example:443/otlp"},
        "https://api.example:443/otlp/v1/metrics",
        "https://api.example:443/otlp/v1/logs",
    ),
    (
        "per-signal used as is",
        "http/protobuf",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://b:9999/custom",
        },
        "http://b:9999/custom",
        "http://a:4318/v1/logs",
    ),
    ("default", "http/json", {}, "http://localhost:4318/v1/metrics", "http://localhost:4318/v1/logs"),
    (
        "unparseable falls back",
        "http/json",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "invalid-endpoint"},
        "http://localhost:4318/v1/metrics",
        "http://localhost:4318/v1/logs",
    ),
]


@pytest.mark.parametrize(
    ("name", "protocol", "env", "metrics_url", "logs_url"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_http_endpoint_resolution(
    name: str, protocol: str, env: dict[str, str], metrics_url: str, logs_url: str
) -> None:
    s = settings(
        OTEL_METRICS_EXPORTER="otlp", OTEL_LOGS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL=protocol, **env
    )
    assert s.metrics_otlp.url == metrics_url
    assert s.logs_otlp.url == logs_url


GRPC = [
    ("http scheme: plaintext", "http://127.0.0.1:4317", "127.0.0.1:4317", False),
    ("https scheme: TLS", "https://collector.example:4317", "collector.example:4317", True),
    ("no scheme: TLS", "127.0.0.1:4317", "127.0.0.1:4317", True),
    ("path ignored", "http://127.0.0.1:4317/v1/metrics", "127.0.0.1:4317", False),
]


@pytest.mark.parametrize(("name", "endpoint", "target", "tls"), GRPC, ids=[g[0] for g in GRPC])
def test_grpc_endpoint_resolution(name: str, endpoint: str, target: str, tls: bool) -> None:
    s = settings(
        OTEL_METRICS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint
    )
    assert (s.metrics_otlp.grpc_target, s.metrics_otlp.tls) == (target, tls)


def test_per_signal_protocols_and_headers() -> None:
    s = settings(
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="http/json",
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20abc,x-team=red",
        OTEL_EXPORTER_OTLP_LOGS_HEADERS="x-team=blue",
        OTEL_EXPORTER_OTLP_TIMEOUT="2500",
        OTEL_EXPORTER_OTLP_LOGS_TIMEOUT="700",
    )
    assert s.metrics_otlp.protocol == "grpc" and s.logs_otlp.protocol == "http/json"
    assert s.metrics_otlp.headers == {"Authorization": "Bearer abc", "x-team": "red"}
    assert s.logs_otlp.headers == {"Authorization": "Bearer abc", "x-team": "blue"}
    assert (s.metrics_otlp.timeout_ms, s.logs_otlp.timeout_ms) == (2500, 700)


def test_describe_never_shows_header_values() -> None:
    s = settings(
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20supersecret",
    )
    assert "supersecret" not in str(s.describe())


@pytest.mark.parametrize(("text", "value"), [("42", 42), (" 7ms", 7), ("+3", 3), ("-2", -2), ("1e3", 1)])
def test_js_parse_int(text: str, value: int) -> None:
    assert js_parse_int(text) == value


def test_js_parse_int_nan() -> None:
    assert js_parse_int("abc") != js_parse_int("abc")  # NaN
