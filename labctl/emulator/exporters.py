"""Build the real OpenTelemetry Python SDK exporters from `Settings`, and count what they do.

Each exporter is the SDK's own (gRPC, HTTP/protobuf, HTTP/JSON from `opentelemetry-exporter-otlp-json-http`,
console, Prometheus). They get every value explicitly from `Settings` — never from the environment — because
the Python SDK reads some variables differently from Claude Code's JS SDK (e.g. it takes
OTEL_EXPORTER_OTLP_TIMEOUT as seconds). `CountingMetricExporter`/`CountingLogExporter` wrap them to count
sent and failed batches; `SdkLogWatcher` counts retries from the SDK's own log lines and shows those lines
the way the SDK logs them.

HTTP/JSON uses `opentelemetry-exporter-otlp-json-http` as it is: checked against what Claude Code's JS exporter
does, it needs nothing of our own — proper OTLP/JSON (lowerCamelCase keys, integer enums, 64-bit integers as
strings), retries on 429/502/503/504 honouring Retry-After within the export timeout (the JS rule), gzip on
request, and the same signal paths. The one difference a receiver could see is the body framing: the JS
exporter sends it chunked, Python with a Content-Length; OTLP receivers accept both.

Retry cadence is the Python SDK's (2^n s with ±20 % jitter, up to 6 attempts); the JS SDK waits 1 s × 1.5^n
(at most 5 s, 5 attempts). Both retry the same failures and both stop when OTEL_EXPORTER_OTLP_TIMEOUT is spent,
so what a student observes — retried or not, and when the export gives up — is the same.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import grpc
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult

from labctl.emulator.settings import OtlpTarget, Settings

# --- counters ---------------------------------------------------------------------------------------


@dataclass
class ExporterStats:
    name: str  # e.g. "metrics/otlp(grpc)"
    sent: int = 0  # batches the receiver accepted
    failed: int = 0  # batches given up on
    retried: int = 0  # retry attempts the SDK logged
    items_sent: int = 0  # data points / log records in accepted batches
    items_failed: int = 0
    in_flight: int = 0  # export calls started and not finished (still retrying when the process exits)
    first_export_s: float | None = None  # seconds after start of the first export attempt
    last_error: str | None = None
    export_seconds: list[float] = field(default_factory=list)  # duration of each export call
    # Spans in accepted batches per span name (trace exporters only): what a trace store should hold.
    items_by_name: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("export_seconds", "items_by_name")}
        if self.items_by_name:
            d["items_by_name"] = dict(sorted(self.items_by_name.items()))
        d["attempts"] = len(self.export_seconds)
        d["max_export_s"] = round(max(self.export_seconds), 3) if self.export_seconds else None
        d["first_export_s"] = None if self.first_export_s is None else round(self.first_export_s, 3)
        return d


class RunStats:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.exporters: dict[str, ExporterStats] = {}
        self.lock = threading.Lock()
        self.sdk_messages: list[str] = []

    def exporter(self, name: str) -> ExporterStats:
        with self.lock:
            return self.exporters.setdefault(name, ExporterStats(name))

    def begin(self, name: str) -> None:
        with self.lock:
            s = self.exporters.setdefault(name, ExporterStats(name))
            s.in_flight += 1
            if s.first_export_s is None:
                s.first_export_s = time.monotonic() - self.started

    def record(
        self,
        name: str,
        ok: bool,
        items: int,
        seconds: float,
        started_at: float,
        names: Sequence[str] = (),
    ) -> None:
        with self.lock:
            s = self.exporters.setdefault(name, ExporterStats(name))
            s.in_flight -= 1
            if s.first_export_s is None:
                s.first_export_s = started_at - self.started
            s.export_seconds.append(seconds)
            if ok:
                s.sent += 1
                s.items_sent += items
                for item in names:
                    s.items_by_name[item] = s.items_by_name.get(item, 0) + 1
            else:
                s.failed += 1
                s.items_failed += items

    def note_retry(self, signal: str, message: str) -> None:
        with self.lock:
            for s in self.exporters.values():
                if s.name.startswith(signal + "/otlp"):
                    s.retried += 1
                    s.last_error = message

    def note_error(self, signal: str | None, message: str) -> None:
        with self.lock:
            for s in self.exporters.values():
                if "/otlp" in s.name and (signal is None or s.name.startswith(signal)):
                    s.last_error = message


# --- wrappers ---------------------------------------------------------------------------------------


def _count_points(data: MetricsData) -> int:
    n = 0
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                n += len(list(m.data.data_points))
    return n


class CountingMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, name: str, stats: RunStats) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,  # the reader reads these
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.name = name
        self.stats = stats
        stats.exporter(name)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        t0 = time.monotonic()
        self.stats.begin(self.name)
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            logging.getLogger("opentelemetry.exporter").error("exporter %s raised: %s", self.name, exc)
            result = MetricExportResult.FAILURE
        self.stats.record(
            self.name,
            result == MetricExportResult.SUCCESS,
            _count_points(metrics_data),
            time.monotonic() - t0,
            t0,
        )
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class CountingLogExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, name: str, stats: RunStats) -> None:
        self.inner = inner
        self.name = name
        self.stats = stats
        stats.exporter(name)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        t0 = time.monotonic()
        self.stats.begin(self.name)
        try:
            result = self.inner.export(batch)
        except Exception as exc:
            logging.getLogger("opentelemetry.exporter").error("exporter %s raised: %s", self.name, exc)
            result = LogRecordExportResult.FAILURE
        ok = result is not None and result.name == "SUCCESS"
        self.stats.record(self.name, ok, len(batch), time.monotonic() - t0, t0)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class CountingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, name: str, stats: RunStats) -> None:
        self.inner = inner
        self.name = name
        self.stats = stats
        stats.exporter(name)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        t0 = time.monotonic()
        self.stats.begin(self.name)
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            logging.getLogger("opentelemetry.exporter").error("exporter %s raised: %s", self.name, exc)
            result = SpanExportResult.FAILURE
        ok = result is not None and result.name == "SUCCESS"
        self.stats.record(self.name, ok, len(spans), time.monotonic() - t0, t0, [s.name for s in spans])
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# --- the SDK's own log lines --------------------------------------------------------------------------

_SIGNAL_RE = re.compile(r"exporting (metrics|logs|spans)")


class SdkLogWatcher(logging.Handler):
    """Shows the SDK's warnings and errors as it logs them (stderr), and counts retries and failures."""

    def __init__(
        self, stats: RunStats, stream: IO[str] | None = None, quiet: bool = False, width: int | None = None
    ) -> None:
        super().__init__(logging.WARNING)
        self.stats = stats
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.width = width  # None: the terminal's

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:
            return
        m = _SIGNAL_RE.search(msg)
        signal = m.group(1) if m else None
        if "Transient error" in msg and signal:
            self.stats.note_retry(signal, msg)
        elif record.levelno >= logging.ERROR:
            self.stats.note_error(signal, msg)
        with self.stats.lock:
            if len(self.stats.sdk_messages) < 200:
                self.stats.sdk_messages.append(f"{record.levelname} {record.name}: {msg}")
        if not self.quiet:
            # The SDK's messages run to 400 columns on one line: wrapped under their logger's name.
            from labctl import ui

            lines = ui.wrap(" ".join(msg.split()), self.width or ui.width(), 2)
            body = "".join(f"  {line}\n" for line in lines)
            self.stream.write(f"{record.levelname.lower()} [{record.name}]\n{body}")
            self.stream.flush()


def install_sdk_log_watcher(stats: RunStats, quiet: bool = False) -> SdkLogWatcher:
    watcher = SdkLogWatcher(stats, quiet=quiet)
    root = logging.getLogger("opentelemetry")
    root.addHandler(watcher)
    root.setLevel(logging.WARNING)
    root.propagate = False
    return watcher


# After the run, the SDK's threads may still log (the retry a shutdown aborted). With no handler at all,
# Python's last-resort handler would print that line bare to stderr, in the middle of the summary.
_AFTER_THE_RUN = logging.NullHandler()


def remove_sdk_log_watcher(watcher: SdkLogWatcher) -> None:
    root = logging.getLogger("opentelemetry")
    root.removeHandler(watcher)
    root.addHandler(_AFTER_THE_RUN)  # a no-op when it is there already


# --- building ---------------------------------------------------------------------------------------


def temporality_map(settings: Settings) -> dict[type, AggregationTemporality]:
    delta, cumulative = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
    instruments: list[type] = [
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    ]
    if settings.temporality == "cumulative":
        return dict.fromkeys(instruments, cumulative)
    if settings.temporality == "lowmemory":  # delta for synchronous counters and histograms only
        return {i: delta if i in (Counter, Histogram) else cumulative for i in instruments}
    # delta: monotonic sums and histograms delta, up-down counters stay cumulative (OTel spec)
    return {i: delta if i in (Counter, Histogram, ObservableCounter) else cumulative for i in instruments}


def _read_ca(settings: Settings) -> bytes | None:
    if not settings.ca_certificate:
        return None
    with open(settings.ca_certificate, "rb") as fh:
        return fh.read()


def _grpc_headers(target: OtlpTarget) -> tuple[tuple[str, str], ...]:
    # gRPC metadata keys must be lowercase (the JS SDK lowercases them for you; Python would reject them).
    return tuple((k.lower(), v) for k, v in target.headers.items())


def _requests_session(settings: Settings, target: OtlpTarget) -> Any:
    """The HTTP/protobuf exporter sends through `requests`, which lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from
    the environment override the exporter's own CA file (a requests quirk). With a CA file configured, use
    a session that does not read the environment, so the configured certificate is the one trusted."""
    if not (target.tls and settings.ca_certificate):
        return None
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def _exporter_args(settings: Settings, target: OtlpTarget) -> dict[str, Any]:
    """What every OTLP exporter of `target.protocol` is built with, the same for metrics and logs."""
    timeout_s = target.timeout_ms / 1000
    gzip = target.compression == "gzip"
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression as GrpcCompression

        ca = _read_ca(settings)
        return {
            "endpoint": target.grpc_target,
            "insecure": not target.tls,
            "credentials": grpc.ssl_channel_credentials(root_certificates=ca) if target.tls else None,
            "headers": _grpc_headers(target) or None,
            "timeout": timeout_s,
            "compression": GrpcCompression.Gzip if gzip else GrpcCompression.NoCompression,
        }
    certificate_file = settings.ca_certificate if target.tls and settings.ca_certificate else None
    if target.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

        return {
            "endpoint": target.url,
            "certificate_file": certificate_file,
            "session": _requests_session(settings, target),
            "headers": target.headers,
            "timeout": timeout_s,
            "compression": HttpCompression.Gzip if gzip else HttpCompression.NoCompression,
        }
    from opentelemetry.exporter.otlp.common.http import Compression as JsonCompression

    return {
        "endpoint": target.url,
        "certificate_file": certificate_file,
        "headers": target.headers,
        "timeout": timeout_s,
        "compression": JsonCompression.GZIP if gzip else JsonCompression.NONE,
    }


def build_otlp_metric_exporter(settings: Settings, target: OtlpTarget) -> MetricExporter:
    exporter: Any
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as exporter
    elif target.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as exporter
    else:
        from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter as exporter
    return exporter(**_exporter_args(settings, target), preferred_temporality=temporality_map(settings))


def build_otlp_log_exporter(settings: Settings, target: OtlpTarget) -> LogRecordExporter:
    exporter: Any
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as exporter
    elif target.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as exporter
    else:
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter as exporter
    return exporter(**_exporter_args(settings, target))


def build_otlp_span_exporter(settings: Settings, target: OtlpTarget) -> SpanExporter:
    exporter: Any
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as exporter
    elif target.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as exporter
    else:
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as exporter
    return exporter(**_exporter_args(settings, target))


class SerializedWriter:
    """A stream the console exporters share: each prints whole documents from its own thread, and a text
    stream is not thread-safe, so without the lock two documents can interleave mid-line."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return self._out.write(text)

    def flush(self) -> None:
        with self._lock:
            self._out.flush()


def console_metric_exporter(out: IO[str]) -> MetricExporter:
    # Like Claude Code's console exporter: cumulative, printed to stdout.
    return ConsoleMetricExporter(out=out)


def console_log_exporter(out: IO[str]) -> LogRecordExporter:
    return ConsoleLogRecordExporter(out=out)


def console_span_exporter(out: IO[str]) -> SpanExporter:
    return ConsoleSpanExporter(out=out)
