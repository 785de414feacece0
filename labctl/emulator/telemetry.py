"""Claude Code's instruments on the real OpenTelemetry Python SDK: its eight counters, its events and its spans.

`Telemetry(settings, ...)` builds one MeterProvider (meter `com.anthropic.claude_code`), one LoggerProvider
(logger `com.anthropic.claude_code.events`) and, with the enhanced-telemetry beta on, one TracerProvider
(tracer `com.anthropic.claude_code.tracing`) with the exporters the settings name, on a resource like Claude
Code's. `record(plan, action)` turns one planned action into the counter increments, event records and
spans Claude Code 2.1.332 produces for it (attribute keys and value types as that client sends them).

Over 500 lines because `record` maps each planned action to everything Claude Code emits for it,
in the client's order: split by signal, one action's counters, events and spans would sit in three
modules that must change together.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, cast

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, set_span_in_context

from labctl.emulator import catalog
from labctl.emulator.exporters import (
    CountingLogExporter,
    CountingMetricExporter,
    CountingSpanExporter,
    RunStats,
    SerializedWriter,
    build_otlp_log_exporter,
    build_otlp_metric_exporter,
    build_otlp_span_exporter,
    console_log_exporter,
    console_metric_exporter,
    console_span_exporter,
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


_SHELL_BUILTINS = frozenset({"echo", "cd", "pwd", "export", "test", "true", "false", "printf", "type"})


def _bash_attributes(d: dict[str, Any]) -> dict[str, str]:
    """What 2.1.332 puts on a Bash tool span about the command (never the command itself)."""
    if d["tool_name"] != "Bash":
        return {}
    words = str(d.get("command_line") or d.get("command") or "").split()
    argv0 = words[0] if words else "other"
    return {
        "bash_command_class": "shell_builtin" if argv0 in _SHELL_BUILTINS else "other",
        "bash_argv0": argv0,
    }


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
                    exp = CountingMetricExporter(
                        build_otlp_metric_exporter(settings, settings.metrics_otlp), label, stats
                    )
                    readers.append(
                        PeriodicExportingMetricReader(
                            exp,
                            export_interval_millis=settings.metric_interval_ms,
                            export_timeout_millis=max(30000, settings.metrics_otlp.timeout_ms + 1000),
                        )
                    )
                elif name == "console":
                    exp = CountingMetricExporter(console_metric_exporter(out), "metrics/console", stats)
                    readers.append(
                        PeriodicExportingMetricReader(exp, export_interval_millis=settings.metric_interval_ms)
                    )
                elif name == "prometheus":
                    readers.append(self._start_prometheus())
            for name in settings.logs_exporters:
                if name == "otlp" and settings.logs_otlp:
                    log_exporters.append(
                        CountingLogExporter(
                            build_otlp_log_exporter(settings, settings.logs_otlp),
                            f"logs/otlp({settings.logs_otlp.protocol})",
                            stats,
                        )
                    )
                elif name == "console":
                    log_exporters.append(
                        CountingLogExporter(console_log_exporter(out), "logs/console", stats)
                    )
            span_exporters = []
            for name in settings.traces_exporters:
                if name == "otlp" and settings.traces_otlp:
                    span_exporters.append(
                        CountingSpanExporter(
                            build_otlp_span_exporter(settings, settings.traces_otlp),
                            f"traces/otlp({settings.traces_otlp.protocol})",
                            stats,
                        )
                    )
                elif name == "console":
                    span_exporters.append(
                        CountingSpanExporter(console_span_exporter(out), "traces/console", stats)
                    )
            self.tracer_provider: TracerProvider | None = None
            if span_exporters:
                self.tracer_provider = TracerProvider(resource=self.resource)
                for se in span_exporters:
                    self.tracer_provider.add_span_processor(
                        BatchSpanProcessor(se, schedule_delay_millis=settings.traces_interval_ms)
                    )
            self.meter_provider = MeterProvider(resource=self.resource, metric_readers=readers)
            self.logger_provider: LoggerProvider | None = None
            if log_exporters:
                self.logger_provider = LoggerProvider(resource=self.resource)
                for le in log_exporters:
                    timeout = settings.logs_otlp.timeout_ms if settings.logs_otlp else 30000
                    self.logger_provider.add_log_record_processor(
                        BatchLogRecordProcessor(
                            le,
                            schedule_delay_millis=settings.logs_interval_ms,
                            export_timeout_millis=max(30000, timeout + 1000),
                        )
                    )
        meter = self.meter_provider.get_meter(catalog.METER_NAME, catalog.SCOPE_VERSION)
        self.instruments = {
            name: meter.create_counter(name, unit=m.unit, description=m.description)
            for name, m in catalog.METRICS.items()
        }
        self.event_logger = (
            self.logger_provider.get_logger(catalog.EVENT_LOGGER_NAME, catalog.SCOPE_VERSION)
            if self.logger_provider
            else None
        )
        self.tracer = (
            self.tracer_provider.get_tracer(catalog.TRACER_NAME, catalog.TRACER_VERSION)
            if self.tracer_provider
            else None
        )
        # (session, prompt.id) -> (its open interaction span, sequence); the emulator's prompts may overlap
        self._interactions: dict[tuple[int, str], tuple[Span, int]] = {}
        self._prompt_ids: dict[int, str] = {}  # session -> the current prompt's prompt.id
        self._pending_attempts: dict[
            int, list[int]
        ] = {}  # session -> failed attempts before the next request
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
            server, _thread = start_http_server(
                self.settings.prometheus_port, addr=self.settings.prometheus_host, registry=REGISTRY
            )
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
        attrs["anthropic.provider"] = "firstParty"
        if s.custom_base_url:
            attrs["anthropic.custom_base_url"] = True
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
        full.update(
            {
                "event.name": name,
                "event.timestamp": datetime.fromtimestamp(now_ns / 1e9, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "event.sequence": seq,
            }
        )
        full.update(attrs)
        self.event_logger.emit(
            timestamp=now_ns, observed_timestamp=now_ns, body=f"claude_code.{name}", attributes=full
        )
        self.counts["events"] += 1

    def _add(self, metric: str, value: float, base: dict[str, Any], **extra: Any) -> None:
        if value <= 0 and metric != "claude_code.session.count":
            return
        self.instruments[metric].add(value, {**base, **extra})
        self.counts["metric_increments"] += 1

    # --- actions ------------------------------------------------------------------------------------

    def _span(
        self,
        plan: SessionPlan,
        prompt_id: str,
        name: str,
        attrs: dict[str, Any],
        duration_ms: float,
        parent: Span | None = None,
        events: tuple[tuple[str, dict[str, Any], int], ...] = (),
    ) -> Span | None:
        """A span that ends now and began `duration_ms` ago (Claude Code exports a span when it ends)."""
        if self.tracer is None:
            return None
        interaction = self._interactions.get((plan.index, prompt_id))
        parent = parent if parent is not None else interaction[0] if interaction else None
        end = time.time_ns()
        start = end - int(max(duration_ms, 0) * 1e6)
        full = {
            **self.standard_attributes(plan),
            "gen_ai.provider.name": "anthropic",
            "span.type": name.removeprefix("claude_code."),
            "gen_ai.conversation.id": plan.identity.session_id,
            **attrs,
        }
        span = self.tracer.start_span(
            name,
            context=set_span_in_context(parent) if parent else None,
            kind=SpanKind.INTERNAL,
            attributes=full,
            start_time=start,
        )
        for ev_name, ev_attrs, at in events:
            span.add_event(ev_name, ev_attrs, timestamp=at)
        return span

    def _end_interaction(self, plan: SessionPlan, prompt_id: str) -> None:
        open_span = self._interactions.pop((plan.index, prompt_id), None)
        if open_span is not None:
            span, _seq = open_span
            span.set_attribute("interaction.duration_ms", int((time.time_ns() - span.start_time) / 1e6))  # type: ignore[attr-defined]
            span.end()

    def record(self, plan: SessionPlan, action: Action) -> None:
        base = self.standard_attributes(plan)
        d = action.data
        k = action.kind
        prompt_id = d.get("prompt_id") or self._prompt_ids.get(plan.index, "")
        redact = not self.settings.log_user_prompts
        if k == "session_start":
            self._add("claude_code.session.count", 1, base, start_type=d["start_type"])
            # At start-up Claude Code resolves managed settings and loads its bundled plugins.
            self._event(
                plan,
                "managed_settings_resolved",
                {
                    "managed_settings.trigger": "startup",
                    "managed_settings.sources": [],
                    "managed_settings.source_behavior": "first-wins",
                    "managed_settings.helper.state": "none",
                    "managed_settings.helper.applied": "none",
                },
            )
            for plugin in catalog.BUNDLED_PLUGINS:
                self._event(
                    plan,
                    "plugin_loaded",
                    {
                        "plugin.name": plugin,
                        "marketplace.name": "builtin",
                        "plugin.scope": "default-bundle",
                        "enabled_via": "default-enable",
                        "plugin_id_hash": uuid.uuid5(uuid.NAMESPACE_URL, plugin).hex[:16],
                        "has_hooks": True,
                        "has_mcp": False,
                        "host_owned_mcp": False,
                        "skill_path_count": 0,
                        "command_path_count": 0,
                        "agent_path_count": 0,
                        "safe_mode": "false",
                    },
                )
        elif k == "user_prompt":
            self._prompt_ids[plan.index] = prompt_id = d["prompt_id"]
            prompt = "<REDACTED>" if redact else d["prompt"]
            self._event(
                plan,
                "user_prompt",
                {
                    "prompt.id": prompt_id,
                    "prompt_length": str(len(d["prompt"])),
                    "prompt": prompt,
                    "prompt_text": prompt,
                    "message.uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, prompt_id)),
                },
            )
            self._add("claude_code.active_time.total", d["typing_s"], base, type="user")
            if self.tracer is not None:
                seq = len([a for a in plan.actions if a.kind == "user_prompt" and a.at <= action.at])
                span = self._span(
                    plan,
                    prompt_id,
                    "claude_code.interaction",
                    {
                        "gen_ai.operation.name": "invoke_agent",
                        "user_prompt": prompt,
                        "user_prompt_length": len(d["prompt"]),
                        "interaction.sequence": seq,
                        "parent.source": "none",
                        "queued_sends": 0,
                    },
                    0,
                    parent=None,
                )
                if span is not None:
                    self._interactions[(plan.index, prompt_id)] = (span, seq)
        elif k == "api_request":
            metric_source = d["query_source"]
            # events name the main thread `sdk` as 2.1.332 does for `claude -p`, a subagent by its agent type
            event_source = {"main": "sdk", "subagent": "agent:builtin:general-purpose"}.get(
                metric_source, metric_source
            )
            common = {"model": d["model"], "query_source": metric_source, "effort": d["effort"]}
            self._add("claude_code.cost.usage", d["cost_usd"], base, **common)
            for token_type, key in (
                ("input", "input_tokens"),
                ("output", "output_tokens"),
                ("cacheRead", "cache_read_tokens"),
                ("cacheCreation", "cache_creation_tokens"),
            ):
                self._add("claude_code.token.usage", d[key], base, type=token_type, **common)
            # A scenario's slow first token is known (first_token_delay_ms); otherwise a quarter of the call.
            ttft = d.get("ttft_ms") or min(d["duration_ms"], max(1, d["duration_ms"] // 4))
            cost = round(d["cost_usd"], 9)
            self._event(
                plan,
                "api_request",
                {
                    "prompt.id": prompt_id,
                    "model": d["model"],
                    "input_tokens": d["input_tokens"],
                    "output_tokens": d["output_tokens"],
                    "cache_read_tokens": d["cache_read_tokens"],
                    "cache_creation_tokens": d["cache_creation_tokens"],
                    "cache_creation_5m_tokens": d["cache_creation_tokens"],
                    "cache_creation_1h_tokens": 0,
                    "cost_usd": cost,
                    "cost_usd_micros": round(cost * 1e6),
                    "duration_ms": d["duration_ms"],
                    "ttft_ms": ttft,
                    "request_id": d["request_id"],
                    "speed": d["speed"],
                    "query_source": event_source,
                    "effort": d["effort"],
                },
            )
            response_length = d["output_tokens"] * 4
            self._event(
                plan,
                "assistant_response",
                {
                    "prompt.id": prompt_id,
                    "response_length": response_length,
                    "response": "<REDACTED>" if redact else "(the emulator's stand-in answer)",
                    "request_id": d["request_id"],
                    "message.uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, d["request_id"])),
                    "model": d["model"],
                    "query_source": event_source,
                },
            )
            failed = self._pending_attempts.pop(plan.index, [])
            attempts = [*failed, len(failed) + 1]
            now = time.time_ns()
            span = self._span(
                plan,
                prompt_id,
                "claude_code.llm_request",
                {
                    "model": d["model"],
                    "gen_ai.system": "anthropic",
                    "gen_ai.request.model": d["model"],
                    "gen_ai.operation.name": "chat",
                    "llm_request.context": "interaction",
                    "speed": d["speed"],
                    "query_source_safe": event_source.replace(":", "."),
                    "duration_ms": d["duration_ms"],
                    "input_tokens": d["input_tokens"],
                    "output_tokens": d["output_tokens"],
                    "cache_read_tokens": d["cache_read_tokens"],
                    "cache_creation_tokens": d["cache_creation_tokens"],
                    "success": True,
                    "attempt": len(attempts),
                    "request_id": d["request_id"],
                    "gen_ai.response.id": d["request_id"],
                    "ttft_ms": ttft,
                    "first_content_ms": ttft + 1,
                    "effort": d["effort"],
                    "stop_reason": d.get("stop_reason", "end_turn"),
                    "gen_ai.response.finish_reasons": [d.get("stop_reason", "end_turn")],
                    "gen_ai.usage.input_tokens": d["input_tokens"]
                    + d["cache_read_tokens"]
                    + d["cache_creation_tokens"],
                    "gen_ai.usage.output_tokens": d["output_tokens"],
                    "gen_ai.usage.cache_read.input_tokens": d["cache_read_tokens"],
                    "gen_ai.usage.cache_write.input_tokens": d["cache_creation_tokens"],
                    "gen_ai.response.model": d["model"],
                },
                d["duration_ms"],
                events=tuple(
                    ("gen_ai.request.attempt", {"attempt": n}, now) for n in range(1, len(attempts) + 1)
                ),
            )
            if span is not None:
                span.end()
        elif k == "api_error":
            self._pending_attempts.setdefault(plan.index, []).append(d["attempt"])
            attrs: dict[str, Any] = {
                "prompt.id": prompt_id,
                "model": d["model"],
                "error": d["error"],
                "duration_ms": d["duration_ms"],
                "attempt": d["attempt"],
                "speed": "normal",
                "query_source": "sdk",
                "effort": "medium",
            }
            if d["status_code"]:
                attrs["status_code"] = str(d["status_code"])
            self._event(plan, "api_error", attrs)
        elif k == "tool":
            request_id = d.get("request_id", "")
            self._event(
                plan,
                "tool_decision",
                {
                    "prompt.id": prompt_id,
                    "decision": d["decision"],
                    "source": d["source"],
                    "tool_name": d["tool_name"],
                    "tool_use_id": d["tool_use_id"],
                    "tool_source": "builtin",
                    "permission_mode": "default",
                    "request_id": request_id,
                },
            )
            if d["tool_name"] in ("Edit", "Write", "NotebookEdit"):
                self._add(
                    "claude_code.code_edit_tool.decision",
                    1,
                    base,
                    decision=d["decision"],
                    source=d["source"],
                    tool_name=d["tool_name"],
                    language=d["language"],
                )
            tool_span = self._span(
                plan,
                prompt_id,
                "claude_code.tool",
                {
                    "tool_name": d["tool_name"],
                    "tool_name_safe": d["tool_name"],
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": d["tool_name"],
                    "tool_use_id": d["tool_use_id"],
                    "gen_ai.tool.call.id": d["tool_use_id"],
                    "duration_ms": d["duration_ms"] + 5,
                    **_bash_attributes(d),
                },
                d["duration_ms"] + 5,
            )
            blocked = self._span(
                plan,
                prompt_id,
                "claude_code.tool.blocked_on_user",
                {"duration_ms": 2, "decision": d["decision"], "source": d["source"]},
                2,
                parent=tool_span,
            )
            if blocked is not None:
                blocked.end()
            if d["decision"] == "accept":  # a rejected tool never runs: no tool_result, no execution span
                result: dict[str, Any] = {
                    "prompt.id": prompt_id,
                    "tool_name": d["tool_name"],
                    "tool_use_id": d["tool_use_id"],
                    "success": "true" if d["success"] else "false",
                    "duration_ms": str(d["duration_ms"]),
                    "tool_input_size_bytes": str(d.get("input_bytes", 90)),
                    "tool_result_size_bytes": str(d["result_bytes"] if d["success"] else 0),
                    "request_id": request_id,
                }
                if not d["success"]:
                    result["error_type"] = "tool_error"
                if self.settings.log_tool_details and d.get("command"):
                    result["tool_parameters"] = '{"bash_command":"git"}'
                self._event(plan, "tool_result", result)
                execution = self._span(
                    plan,
                    prompt_id,
                    "claude_code.tool.execution",
                    {
                        "tool_use_id": d["tool_use_id"],
                        "gen_ai.tool.call.id": d["tool_use_id"],
                        "duration_ms": d["duration_ms"],
                        "success": bool(d["success"]),
                    },
                    d["duration_ms"],
                    parent=tool_span,
                )
                if execution is not None:
                    execution.end()
            if tool_span is not None:
                tool_span.end()
            if d["added"]:
                self._add("claude_code.lines_of_code.count", d["added"], base, type="added", model=d["model"])
            if d["removed"]:
                self._add(
                    "claude_code.lines_of_code.count", d["removed"], base, type="removed", model=d["model"]
                )
            if d["success"] and d.get("command") == "git commit":
                self._add("claude_code.commit.count", 1, base)
            if d["success"] and d.get("command") == "gh pr create":
                self._add("claude_code.pull_request.count", 1, base)
        elif k == "active_time":
            self._add("claude_code.active_time.total", d["cli_s"], base, type="cli")
            self._end_interaction(plan, prompt_id)  # the prompt's work is done: its trace is complete

    # --- the end ------------------------------------------------------------------------------------

    def shutdown(self, timeout_s: float) -> bool:
        """Flush and stop, like Claude Code's exit hook; False when it did not finish within `timeout_s`."""
        done = threading.Event()

        def run() -> None:
            try:
                for index in list(self._interactions):  # a prompt still running at exit ends with the process
                    span, _seq = self._interactions.pop(index)
                    span.end()
                self.meter_provider.shutdown(timeout_millis=timeout_s * 1000)
                if self.logger_provider:
                    self.logger_provider.shutdown()
                if self.tracer_provider:
                    self.tracer_provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=run, name="telemetry-shutdown", daemon=True).start()
        finished = done.wait(timeout_s)
        if self.prometheus_server is not None:
            self.prometheus_server.shutdown()
            self.prometheus_server.server_close()  # release the port (shutdown only stops serving)
        return finished
