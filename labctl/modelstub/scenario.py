"""Scenario files (lab/scenarios/NAME.yaml): what the model stub answers, turn by turn, validated up front.

A scenario is a script for one Claude Code session: each turn is one main-loop request of the client
and answers with text, tool calls or both, with the token usage the stub reports for it. A turn may fail
first (429 with retry-after, 529, 500, ...) so the client's `api_error` events and retries appear on
demand, and may delay its first token. Every error names the file, the path inside it and the fix.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabError

# The Messages API's error types by HTTP status (docs: "Errors"); a fault names one of these statuses.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
STOP_REASONS = ("end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Usage:
    """Token counts the stub reports for one answer (the client turns them into token.usage and cost)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0

    def as_api(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            # The 5-minute cache is the API's default lifetime: all cache writes land there.
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_creation,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": self.output,
            "service_tier": "standard",
        }


@dataclass(frozen=True)
class Fault:
    """One failed attempt before a turn's answer: an HTTP error, or an error event inside the stream."""

    status: int
    retry_after: float | None = None  # seconds, sent as the retry-after header
    message: str = ""
    mid_stream: bool = False  # stream starts, then an `error` event (the API's overloaded-in-stream case)

    @property
    def error_type(self) -> str:
        return ERROR_TYPES[self.status]


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    text: str = ""
    tools: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    faults: tuple[Fault, ...] = ()
    first_token_delay_ms: int = 0
    model: str | None = None  # the model the answer names (default: the one requested)
    stop_reason: str = ""  # default: tool_use when the turn calls tools, else end_turn

    @property
    def final_stop_reason(self) -> str:
        return self.stop_reason or ("tool_use" if self.tools else "end_turn")


# Side requests (anything that is not a main-loop turn, e.g. a title or a quota probe) get this answer.
DEFAULT_SIDE = Turn(text="Lab session", usage=Usage(input=40, output=4))
AFTER_SCRIPT = "The lab's model stub has no more scripted turns in this scenario."


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    prompt: str
    turns: tuple[Turn, ...]
    seed: int = 0
    model: str | None = None  # `labctl claude` passes it as --model
    allowed_tools: tuple[str, ...] = ()  # `labctl claude` passes them as --allowedTools
    disallowed_tools: tuple[str, ...] = ()  # ... and --disallowedTools
    max_retries: int | None = (
        None  # `labctl claude` sets CLAUDE_CODE_MAX_RETRIES (an exhausted budget: api_error)
    )
    subagent: tuple[Turn, ...] = ()  # what a subagent (the Agent tool) is answered, turn by turn
    side: Turn = DEFAULT_SIDE
    after_script: str = AFTER_SCRIPT

    def answered(self) -> tuple[Turn, ...]:
        """The turns the client receives: all, unless a turn's faults outlast the retry budget (it gives up)."""
        out = []
        for turn in self.turns:
            if self.max_retries is not None and len(turn.faults) > self.max_retries:
                break
            out.append(turn)
        return tuple(out)

    def allows(self, tool: str) -> bool:
        """Whether a `-p` run with allowed_tools accepts this tool (by name, or a `Name(pattern)` rule)."""
        return any(rule == tool or rule.startswith(f"{tool}(") for rule in self.allowed_tools)

    def expected(self) -> Expected:
        """What one `-p` run of this scenario must add up to in the lab (side requests excluded)."""
        tokens = {"input": 0, "output": 0, "cacheRead": 0, "cacheCreation": 0}
        decisions = {"accept": 0, "reject": 0}
        edits = {"accept": 0, "reject": 0}
        files: dict[str, str] = {}
        added = removed = 0
        answered = self.answered()
        for turn in (*answered, *(self.subagent if answered else ())):
            u = turn.usage
            for key, value in (
                ("input", u.input),
                ("output", u.output),
                ("cacheRead", u.cache_read),
                ("cacheCreation", u.cache_creation),
            ):
                tokens[key] += value
            for call in turn.tools:
                verdict = "accept" if self.allows(call.name) else "reject"
                decisions[verdict] += 1
                if call.name in _EDIT_TOOLS:
                    edits[verdict] += 1
                if verdict == "accept":
                    plus, minus = _lines_changed(call, files)
                    added, removed = added + plus, removed + minus
        return Expected(
            tokens=tokens,
            lines_added=added,
            lines_removed=removed,
            decisions={k: v for k, v in decisions.items() if v},
            edit_decisions={k: v for k, v in edits.items() if v},
            api_requests=len(answered) + (len(self.subagent) if answered else 0),
            api_errors=int(len(answered) < len(self.turns)),
        )


_EDIT_TOOLS = ("Edit", "Write", "NotebookEdit")


@dataclass(frozen=True)
class Expected:
    tokens: dict[str, int]  # by the client's token.usage `type`
    lines_added: int
    lines_removed: int
    decisions: dict[str, int]  # tool_decision events by decision
    edit_decisions: dict[str, int]  # code_edit_tool.decision by decision
    api_requests: int
    api_errors: int


def _lines_changed(call: ToolCall, files: dict[str, str]) -> tuple[int, int]:
    """Lines added and removed as the pinned client counts them: a new file's lines split on "\\n" (a final
    newline counts as one more line), otherwise a line diff (tests/claude/test_real_client.py checks it)."""
    path = str(call.input.get("file_path", ""))
    if call.name == "Write":
        content = str(call.input.get("content", ""))
        before = files.get(path)
        files[path] = content
        if before is None:
            return len(content.split("\n")), 0
        return _diff(before, content)
    if call.name == "Edit":
        old, new = str(call.input.get("old_string", "")), str(call.input.get("new_string", ""))
        files[path] = files.get(path, "").replace(old, new, 1)
        return _diff(old, new)
    return 0, 0


def _diff(before: str, after: str) -> tuple[int, int]:
    plus = minus = 0
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        plus += line.startswith("+ ")
        minus += line.startswith("- ")
    return plus, minus


# --- validation ---------------------------------------------------------------------------------------


class _Where:
    """The file and the path inside it, for error messages: `lab/scenarios/x.yaml: turns[2].usage.input`."""

    def __init__(self, path: Path, parts: tuple[str, ...] = ()) -> None:
        self.path = path
        self.parts = parts

    def __truediv__(self, part: str | int) -> _Where:
        return _Where(self.path, (*self.parts, f"[{part}]" if isinstance(part, int) else part))

    def __str__(self) -> str:
        dotted = "".join(p if p.startswith("[") else f".{p}" for p in self.parts).lstrip(".")
        return f"{self.path}: {dotted or '(top level)'}"

    def fail(self, problem: str, fix: str) -> LabError:
        return LabError(f"{self}: {problem}", fix)


def _mapping(raw: Any, where: _Where, keys: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise where.fail(
            f"expected a mapping, got {type(raw).__name__}",
            f"write it as `key: value` lines ({', '.join(sorted(keys))})",
        )
    unknown = sorted(str(k) for k in raw if k not in keys)
    if unknown:
        raise where.fail(f"unknown key {unknown[0]!r}", f"valid keys here: {', '.join(sorted(keys))}")
    return raw


def _int(raw: Any, where: _Where, minimum: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise where.fail(
            f"expected a whole number ≥ {minimum}, got {raw!r}", f"write a number such as {max(minimum, 100)}"
        )
    return raw


def _text(raw: Any, where: _Where) -> str:
    if not isinstance(raw, str):
        raise where.fail(f"expected text, got {type(raw).__name__}", 'quote it: "..."')
    return raw


def _strings(raw: Any, where: _Where) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise where.fail(f"expected a list of names, got {raw!r}", "write e.g. [Write, Edit]")
    return tuple(raw)


def _usage(raw: Any, where: _Where) -> Usage:
    if raw is None:
        return Usage()
    data = _mapping(raw, where, {"input", "output", "cache_read", "cache_creation"})
    return Usage(**{k: _int(v, where / k) for k, v in data.items()})


def _fault(raw: Any, where: _Where) -> Fault:
    data = _mapping(raw, where, {"status", "retry_after", "message", "mid_stream"})
    if "status" not in data:
        raise where.fail("a fault needs a status", f"statuses: {', '.join(map(str, ERROR_TYPES))}")
    status = data["status"]
    if status not in ERROR_TYPES:
        raise (where / "status").fail(
            f"{status!r} is not an error status the Messages API returns",
            f"use one of {', '.join(map(str, ERROR_TYPES))} (429 rate limit, 529 overloaded, 500 api error)",
        )
    retry_after = data.get("retry_after")
    if retry_after is not None and (
        isinstance(retry_after, bool)
        or not isinstance(retry_after, int | float)
        or not 0 <= retry_after <= 60
    ):
        raise (where / "retry_after").fail(
            f"expected seconds between 0 and 60, got {retry_after!r}", "write e.g. retry_after: 1"
        )
    mid_stream = data.get("mid_stream", False)
    if not isinstance(mid_stream, bool):
        raise (where / "mid_stream").fail(
            f"expected true or false, got {mid_stream!r}", "write mid_stream: true"
        )
    message = _text(data.get("message", ""), where / "message")
    return Fault(status=status, retry_after=retry_after, message=message, mid_stream=mid_stream)


def _tool(raw: Any, where: _Where) -> ToolCall:
    data = _mapping(raw, where, {"name", "input"})
    name = _text(data.get("name"), where / "name") if "name" in data else ""
    if not name:
        raise where.fail(
            "a tool call needs a name", "e.g. {name: Write, input: {file_path: hello.py, content: ...}}"
        )
    tool_input = data.get("input", {})
    if not isinstance(tool_input, dict):
        raise (where / "input").fail(
            f"expected a mapping of the tool's parameters, got {tool_input!r}", "e.g. input: {command: ls}"
        )
    return ToolCall(name=name, input=tool_input)


_TURN_KEYS = {"text", "tools", "usage", "faults", "first_token_delay_ms", "model", "stop_reason"}


def _turn(raw: Any, where: _Where) -> Turn:
    data = _mapping(raw, where, _TURN_KEYS)
    text = _text(data.get("text", ""), where / "text")
    tools_raw = data.get("tools") or []
    if not isinstance(tools_raw, list):
        raise (where / "tools").fail(
            "expected a list of tool calls", "write tools: [{name: Write, input: {...}}]"
        )
    tools = tuple(_tool(t, where / "tools" / i) for i, t in enumerate(tools_raw))
    if not text and not tools:
        raise where.fail("a turn answers with text, tool calls or both", "add `text:` or `tools:`")
    faults_raw = data.get("faults") or []
    if not isinstance(faults_raw, list):
        raise (where / "faults").fail(
            "expected a list of faults", "write faults: [{status: 429, retry_after: 1}]"
        )
    stop_reason = data.get("stop_reason", "")
    if stop_reason and stop_reason not in STOP_REASONS:
        raise (where / "stop_reason").fail(
            f"{stop_reason!r} is not a stop reason", f"use one of {', '.join(STOP_REASONS)}"
        )
    model = data.get("model")
    return Turn(
        text=text,
        tools=tools,
        usage=_usage(data.get("usage"), where / "usage"),
        faults=tuple(_fault(f, where / "faults" / i) for i, f in enumerate(faults_raw)),
        first_token_delay_ms=_int(data.get("first_token_delay_ms", 0), where / "first_token_delay_ms"),
        model=_text(model, where / "model") if model is not None else None,
        stop_reason=stop_reason,
    )


_TOP_KEYS = {
    "description",
    "prompt",
    "seed",
    "model",
    "allowed_tools",
    "disallowed_tools",
    "max_retries",
    "turns",
    "subagent",
    "side",
    "after_script",
}


def parse(raw: Any, path: Path) -> Scenario:
    where = _Where(path)
    data = _mapping(raw, where, _TOP_KEYS)
    for key in ("description", "prompt", "turns"):
        if key not in data:
            raise where.fail(f"missing `{key}`", "every scenario has description, prompt and turns")
    turns_raw = data["turns"]
    if not isinstance(turns_raw, list) or not turns_raw:
        raise (where / "turns").fail(
            "expected a non-empty list of turns", "add at least one `- text: ...` turn"
        )
    model = data.get("model")
    subagent_raw = data.get("subagent") or []
    if not isinstance(subagent_raw, list):
        raise (where / "subagent").fail("expected a list of turns", "write subagent: [{text: ...}]")
    return Scenario(
        name=path.stem,
        path=path,
        description=_text(data["description"], where / "description"),
        prompt=_text(data["prompt"], where / "prompt"),
        turns=tuple(_turn(t, where / "turns" / i) for i, t in enumerate(turns_raw)),
        seed=_int(data.get("seed", 0), where / "seed"),
        model=_text(model, where / "model") if model is not None else None,
        allowed_tools=_strings(data.get("allowed_tools", []), where / "allowed_tools"),
        disallowed_tools=_strings(data.get("disallowed_tools", []), where / "disallowed_tools"),
        max_retries=_int(data["max_retries"], where / "max_retries") if "max_retries" in data else None,
        subagent=tuple(_turn(t, where / "subagent" / i) for i, t in enumerate(subagent_raw)),
        side=_turn(data["side"], where / "side") if "side" in data else DEFAULT_SIDE,
        after_script=_text(data.get("after_script", AFTER_SCRIPT), where / "after_script"),
    )


def load(path: Path) -> Scenario:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise LabError(
            f"cannot read scenario {path}: {exc.strerror}", "check the path (`labctl claude --list`)"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise LabError(
            f"{path}:{at} is not valid YAML: {getattr(exc, 'problem', exc)}",
            "fix the indentation or quoting there",
        ) from None
    return parse(raw, path)


def load_dir(directory: Path) -> dict[str, Scenario]:
    """Every scenario in a directory, all validated: one bad file stops the stub before it starts."""
    if not directory.is_dir():
        raise LabError(f"no scenario directory {directory}", "the lab's scenarios live in lab/scenarios/")
    out: dict[str, Scenario] = {}
    for path in sorted(directory.glob("*.yaml")):
        if not set(path.stem) <= _NAME_CHARS:
            raise LabError(f"{path}: scenario names use a-z, 0-9, - and _ only", f"rename {path.name}")
        out[path.stem] = load(path)
    if not out:
        raise LabError(
            f"{directory} holds no scenario (*.yaml)", "add one, e.g. copy lab/scenarios/hello-write.yaml"
        )
    return out
