"""Claude Code's instruments on the real OpenTelemetry Python SDK: the eight counters and the five events.

`Telemetry(settings, ...)` builds one MeterProvider (meter `com.anthropic.claude_code`) and one LoggerProvider
(logger `com.anthropic.claude_code.events`) with the exporters the settings name, on a resource like Claude
Code's. `record(plan, action)` turns one planned action into the counter increments and the event record
Claude Code would produce for it.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, cast

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from labctl.emulator import catalog
from labctl.emulator.exporters import (
    CountingLogExporter,
    CountingMetricExporter,
    RunStats,
    SerializedWriter,
    build_otlp_log_exporter,
    build_otlp_metric_exporter,
    console_log_exporter,
    console_metric_exporter,
)
from labctl.emulator.session import Action, SessionPlan
from labctl.emulator.settings import Settings

MARKER_KEY = "lab.marker"


def host_arch() -> str:
    # Node's os.arch() names, normalised by the JS host detector (x64 -> amd64).
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


def build_resource(settings: Settings, marker: str | None, service_name: str | None = None) -> Resource:
    attrs: dict[str, Any] = {
        "service.name": catalog.SERVICE_NAME,
        "service.version": catalog.APP_VERSION,
        "os.type": sys.platform if sys.platform != "win32" else "windows",
        "os.version": platform.release(),
        "host.arch": host_arch(),
    }
    # The JS env detector merges OTEL_RESOURCE_ATTRIBUTES (and OTEL_SERVICE_NAME) last: they win.
    attrs.update(settings.resource_attributes)
    if service_name:
        attrs["service.name"] = service_name
    if marker:
        attrs[MARKER_KEY] = marker
    return Resource(attrs)


@contextmanager
def scrubbed_environment() -> Iterator[None]:
    """Hide OTEL_* while SDK objects are built, so the Python SDK cannot read a variable its own way."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    for k in saved:
        os.environ.pop(k, None)
    try:
        yield
    finally:
        os.environ.update(saved)


class Telemetry:
    def __init__(
        self,
        settings: Settings,
        stats: RunStats,
        marker: str | None = None,
        console_out: IO[str] | None = None,
        service_name: str | None = None,
    ) -> None:
        self.settings = settings
        self.stats = stats
        self.marker = marker
        self.resource = build_resource(settings, marker, service_name)
        self.prometheus_server: Any = None
        out = cast(IO[str], SerializedWriter(console_out or sys.stdout))  # write/flush is all they use
        readers: list[MetricReader] = []
        log_exporters = []
        with scrubbed_environment():
            for name in settings.metrics_exporters:
                if name == "otlp" and settings.metrics_otlp:
                    label = f"metrics/otlp({settings.metrics_otlp.protocol})"
                    exp = CountingMetricExporter(build_otlp_metric_exporter(settings, settings.metrics_otlp),
                                                 label, stats)
                    readers.append(PeriodicExportingMetricReader(
                        exp, export_interval_millis=settings.metric_interval_ms,
                        export_timeout_millis=max(30000, settings.metrics_otlp.timeout_ms + 1000)))
                elif name == "console":
                    exp = CountingMetricExporter(console_metric_exporter(out), "metrics/console", stats)
                    readers.append(PeriodicExportingMetricReader(
                        exp, export_interval_millis=settings.metric_interval_ms))
                elif name == "prometheus":
                    readers.append(self._start_prometheus())
            for name in settings.logs_exporters:
                if name == "otlp" and settings.logs_otlp:
                    log_exporters.append(CountingLogExporter(
                        build_otlp_log_exporter(settings, settings.logs_otlp),
                        f"logs/otlp({settings.logs_otlp.protocol})", stats))
                elif name == "console":
                    log_exporters.append(CountingLogExporter(console_log_exporter(out), "logs/console", stats))
            self.meter_provider = MeterProvider(resource=self.resource, metric_readers=readers)
            self.logger_provider: LoggerProvider | None = None
            if log_exporters:
                self.logger_provider = LoggerProvider(resource=self.resource)
                for le in log_exporters:
                    timeout = settings.logs_otlp.timeout_ms if settings.logs_otlp else 30000
                    self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(
                        le, schedule_delay_millis=settings.logs_interval_ms,
                        export_timeout_millis=max(30000, timeout + 1000)))
        meter = self.meter_provider.get_meter(catalog.METER_NAME, catalog.SCOPE_VERSION)
        self.instruments = {
            name: meter.create_counter(name, unit=m.unit, description=m.description)
            for name, m in catalog.METRICS.items()
        }
        self.event_logger = (
            self.logger_provider.get_logger(catalog.EVENT_LOGGER_NAME, catalog.SCOPE_VERSION)
            if self.logger_provider else None
        )
        self._sequences: dict[int, int] = {}
        self._seq_lock = threading.Lock()
        self.counts = {"metric_increments": 0, "events": 0}

    def _start_prometheus(self) -> MetricReader:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import (
            GC_COLLECTOR,
            PLATFORM_COLLECTOR,
            PROCESS_COLLECTOR,
            REGISTRY,
            start_http_server,
        )

        # Claude Code's JS exporter serves only OpenTelemetry metrics: drop the Python client's own.
        for collector in (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR):
            try:
                REGISTRY.unregister(collector)
            except KeyError:
                pass
        reader = PrometheusMetricReader()
        try:
            server, _thread = start_http_server(self.settings.prometheus_port, addr=self.settings.prometheus_host,
                                               registry=REGISTRY)
        except OSError as exc:
            from labctl.errors import LabError

            raise LabError(
                f"the prometheus exporter cannot listen on {self.settings.prometheus_host}:"
                f"{self.settings.prometheus_port}: {exc.strerror or exc}",
                "another process (another Claude Code or emulator?) holds the port: stop it, or set "
                "OTEL_EXPORTER_PROMETHEUS_PORT",
            ) from None
        self.prometheus_server = server
        self.stats.exporter("metrics/prometheus")
        return reader

    # --- attributes -------------------------------------------------------------------------------

    def standard_attributes(self, plan: SessionPlan) -> dict[str, Any]:
        s, ident = self.settings, plan.identity
        attrs: dict[str, Any] = {}
        if s.include_session_id:
            attrs["session.id"] = ident.session_id
        if s.include_version:
            attrs["app.version"] = catalog.APP_VERSION
        attrs["organization.id"] = ident.organization_id
        if s.include_account_uuid:
            attrs["user.account_uuid"] = ident.account_uuid
        attrs["user.id"] = ident.user_id
        if ident.email:
            attrs["user.email"] = ident.email
        attrs["terminal.type"] = ident.terminal
        if s.include_resource_attributes:
            attrs.update(s.resource_attributes)
            if self.marker:
                attrs[MARKER_KEY] = self.marker
        return attrs

    def _event(self, plan: SessionPlan, name: str, attrs: dict[str, Any]) -> None:
        if self.event_logger is None:
            return
        with self._seq_lock:
            seq = self._sequences.get(plan.index, 0)
            self._sequences[plan.index] = seq + 1
        now_ns = time.time_ns()
        full = self.standard_attributes(plan)
        if self.marker:
            full[MARKER_KEY] = self.marker
        full.update({
            "event.name": name,
            "event.timestamp": datetime.fromtimestamp(now_ns / 1e9, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "event.sequence": seq,
        })
        full.update(attrs)
        self.event_logger.emit(timestamp=now_ns, observed_timestamp=now_ns, body=f"claude_code.{name}",
                               attributes=full)
        self.counts["events"] += 1

    def _add(self, metric: str, value: float, base: dict[str, Any], **extra: Any) -> None:
        if value <= 0 and metric != "claude_code.session.count":
            return
        self.instruments[metric].add(value, {**base, **extra})
        self.counts["metric_increments"] += 1

    # --- actions ------------------------------------------------------------------------------------

    def record(self, plan: SessionPlan, action: Action) -> None:
        base = self.standard_attributes(plan)
        d = action.data
        k = action.kind
        if k == "session_start":
            self._add("claude_code.session.count", 1, base, start_type=d["start_type"])
        elif k == "user_prompt":
            prompt = d["prompt"] if self.settings.log_user_prompts else "<REDACTED>"
            self._event(plan, "user_prompt", {"prompt_length": str(len(d["prompt"])), "prompt": prompt,
                                              "prompt.id": d["prompt_id"]})
            self._add("claude_code.active_time.total", d["typing_s"], base, type="user")
        elif k == "api_request":
            common = {"model": d["model"], "query_source": d["query_source"], "speed": d["speed"],
                      "effort": d["effort"]}
            self._add("claude_code.cost.usage", d["cost_usd"], base, **common)
            for token_type, key in (("input", "input_tokens"), ("output", "output_tokens"),
                                    ("cacheRead", "cache_read_tokens"), ("cacheCreation", "cache_creation_tokens")):
                self._add("claude_code.token.usage", d[key], base, type=token_type, **common)
            self._event(plan, "api_request", {
                "model": d["model"], "cost_usd": str(round(d["cost_usd"], 6)), "duration_ms": str(d["duration_ms"]),
                "input_tokens": str(d["input_tokens"]), "output_tokens": str(d["output_tokens"]),
                "cache_read_tokens": str(d["cache_read_tokens"]),
                "cache_creation_tokens": str(d["cache_creation_tokens"]), "request_id": d["request_id"],
                "speed": d["speed"], "query_source": d["query_source"], "effort": d["effort"]})
        elif k == "api_error":
            self._event(plan, "api_error", {
                "model": d["model"], "error": d["error"],
                "status_code": str(d["status_code"]) if d["status_code"] else "undefined",
                "duration_ms": str(d["duration_ms"]), "attempt": str(d["attempt"]), "request_id": d["request_id"]})
        elif k == "tool":
            self._event(plan, "tool_decision", {"tool_name": d["tool_name"], "tool_use_id": d["tool_use_id"],
                                                "decision": d["decision"], "source": d["source"]})
            if d["tool_name"] in ("Edit", "Write", "NotebookEdit"):
                self._add("claude_code.code_edit_tool.decision", 1, base, tool_name=d["tool_name"],
                          decision=d["decision"], source=d["source"], language=d["language"])
            result: dict[str, Any] = {
                "tool_name": d["tool_name"], "tool_use_id": d["tool_use_id"],
                "success": "true" if d["success"] else "false", "duration_ms": str(d["duration_ms"]),
                "decision_type": d["decision"], "decision_source": d["source"],
                "tool_result_size_bytes": str(d["result_bytes"] if d["success"] else 0)}
            if not d["success"]:
                result["error_type"] = "permission_denied" if d["decision"] == "reject" else "tool_error"
            if self.settings.log_tool_details and d.get("command"):
                result["tool_parameters"] = '{"bash_command":"git"}'
            self._event(plan, "tool_result", result)
            if d["added"]:
                self._add("claude_code.lines_of_code.count", d["added"], base, type="added", model=d["model"])
            if d["removed"]:
                self._add("claude_code.lines_of_code.count", d["removed"], base, type="removed", model=d["model"])
            if d["success"] and d.get("command") == "git commit":
                self._add("claude_code.commit.count", 1, base)
            if d["success"] and d.get("command") == "gh pr create":
                self._add("claude_code.pull_request.count", 1, base)
        elif k == "active_time":
            self._add("claude_code.active_time.total", d["cli_s"], base, type="cli")

    # --- the end ------------------------------------------------------------------------------------

    def shutdown(self, timeout_s: float) -> bool:
        """Flush and stop, like Claude Code's exit hook; False when it did not finish within `timeout_s`."""
        done = threading.Event()

        def run() -> None:
            try:
                self.meter_provider.shutdown(timeout_millis=timeout_s * 1000)
                if self.logger_provider:
                    self.logger_provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=run, name="telemetry-shutdown", daemon=True).start()
        finished = done.wait(timeout_s)
        if self.prometheus_server is not None:
            self.prometheus_server.shutdown()
            self.prometheus_server.server_close()  # release the port (shutdown only stops serving)
        return finished
