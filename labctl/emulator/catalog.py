"""What Claude Code emits, as data: the eight metrics, the events and spans, models and their prices.

Facts from Claude Code's public monitoring documentation and from what the real client 2.1.332 sends
(see lab/contracts/claude-code.yaml). The session model and the instruments both read this table, so a
name or unit is written exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

METER_NAME = "com.anthropic.claude_code"
EVENT_LOGGER_NAME = "com.anthropic.claude_code.events"
TRACER_NAME = "com.anthropic.claude_code.tracing"
TRACER_VERSION = "1.0.0"
SERVICE_NAME = "claude-code"
# The emulated Claude Code release (service.version / app.version), the one the lab's contract was
# observed from; its meter and event logger carry the same version.
APP_VERSION = "2.1.332"
SCOPE_VERSION = APP_VERSION
# Bundled plugins Claude Code 2.1.332 loads at start-up (one plugin_loaded event each).
BUNDLED_PLUGINS = (
    "cc-plugin-agents-md",
    "cc-plugin-plugin-authoring",
    "cc-plugin-privacy",
    "cc-plugin-telemetry",
)


@dataclass(frozen=True)
class MetricDef:
    name: str
    unit: str
    description: str
    attributes: tuple[str, ...]  # extra attributes beyond the standard ones


METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        MetricDef("claude_code.session.count", "", "Count of CLI sessions started", ("start_type",)),
        MetricDef(
            "claude_code.lines_of_code.count", "", "Count of lines of code modified", ("type", "model")
        ),
        MetricDef("claude_code.pull_request.count", "", "Number of pull requests created", ()),
        MetricDef("claude_code.commit.count", "", "Number of git commits created", ()),
        MetricDef(
            "claude_code.cost.usage",
            "USD",
            "Cost of the Claude Code session",
            ("model", "query_source", "effort"),
        ),
        MetricDef(
            "claude_code.token.usage",
            "tokens",
            "Number of tokens used",
            ("type", "model", "query_source", "effort"),
        ),
        MetricDef(
            "claude_code.code_edit_tool.decision",
            "",
            "Count of code editing tool permission decisions",
            ("tool_name", "decision", "source", "language"),
        ),
        MetricDef("claude_code.active_time.total", "s", "Total active time in seconds", ("type",)),
    )
}

EVENTS: dict[str, tuple[str, ...]] = {
    "managed_settings_resolved": (
        "managed_settings.trigger",
        "managed_settings.sources",
        "managed_settings.source_behavior",
        "managed_settings.helper.state",
        "managed_settings.helper.applied",
    ),
    "plugin_loaded": (
        "plugin.name",
        "marketplace.name",
        "plugin.scope",
        "enabled_via",
        "plugin_id_hash",
        "has_hooks",
        "has_mcp",
        "host_owned_mcp",
        "skill_path_count",
        "command_path_count",
        "agent_path_count",
        "safe_mode",
    ),
    "user_prompt": ("prompt.id", "prompt_length", "prompt", "prompt_text", "message.uuid"),
    "api_request": (
        "prompt.id",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "cache_creation_5m_tokens",
        "cache_creation_1h_tokens",
        "cost_usd",
        "cost_usd_micros",
        "duration_ms",
        "ttft_ms",
        "request_id",
        "speed",
        "query_source",
        "effort",
    ),
    "assistant_response": (
        "prompt.id",
        "response_length",
        "response",
        "request_id",
        "message.uuid",
        "model",
        "query_source",
    ),
    "api_error": (
        "prompt.id",
        "model",
        "error",
        "status_code",
        "duration_ms",
        "attempt",
        "speed",
        "query_source",
        "effort",
    ),
    "tool_decision": (
        "prompt.id",
        "decision",
        "source",
        "tool_name",
        "tool_use_id",
        "tool_source",
        "permission_mode",
        "request_id",
    ),
    "tool_result": (
        "prompt.id",
        "tool_name",
        "tool_use_id",
        "success",
        "duration_ms",
        "error_type",
        "tool_input_size_bytes",
        "tool_result_size_bytes",
        "request_id",
    ),
}

# Spans (with CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 and OTEL_TRACES_EXPORTER): name -> parent names.
SPANS: dict[str, tuple[str, ...]] = {
    "claude_code.interaction": (),
    "claude_code.llm_request": ("claude_code.interaction",),
    "claude_code.tool": ("claude_code.interaction",),
    "claude_code.tool.blocked_on_user": ("claude_code.tool",),
    "claude_code.tool.execution": ("claude_code.tool",),
}

TOKEN_TYPES = ("input", "output", "cacheRead", "cacheCreation")


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens, by token type (public list prices)."""

    input: float
    output: float
    cache_read: float
    cache_write: float


MODELS: dict[str, ModelPrice] = {
    "claude-sonnet-4-5-20250929": ModelPrice(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4-5-20251001": ModelPrice(1.0, 5.0, 0.10, 1.25),
    "claude-opus-4-1-20250805": ModelPrice(15.0, 75.0, 1.50, 18.75),
}
# Short names accepted by --models (e.g. "sonnet=6,haiku=3,opus=1").
MODEL_ALIASES = {
    "sonnet": "claude-sonnet-4-5-20250929",
    "haiku": "claude-haiku-4-5-20251001",
    "opus": "claude-opus-4-1-20250805",
}
DEFAULT_MODEL_MIX = {"sonnet": 6.0, "haiku": 3.0, "opus": 1.0}


def cost_usd(
    model: str, input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int
) -> float:
    p = MODELS[model]
    return (
        input_tokens * p.input
        + output_tokens * p.output
        + cache_read * p.cache_read
        + cache_creation * p.cache_write
    ) / 1_000_000
