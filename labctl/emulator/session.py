"""The session model: what a person's Claude Code session does, as a timed plan of actions.

A session starts, then the user sends prompts (Poisson arrivals at `rate` per minute). Each prompt leads to
one or more API requests (tokens by type, cost by model, durations) with tool uses in between: a permission
decision, the tool's result and, for edit tools, lines added/removed; now and then a git commit or a pull
request. A few API requests fail first (overloaded, rate limited) and are retried.

Everything is drawn from one `random.Random` per session, seeded from the run's seed and the session's index,
so a run with `--seed` produces the same sessions, ids, values and order every time.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from labctl.emulator.catalog import MODELS, cost_usd

TERMINALS = ("vscode", "iTerm.app", "tmux", "xterm-256color", "Apple_Terminal", "cursor")
LANGUAGES = ("Python", "TypeScript", "Go", "Rust", "Markdown", "YAML")
EDIT_TOOLS = ("Edit", "Write", "NotebookEdit")
OTHER_TOOLS = ("Read", "Bash", "Grep", "Glob", "WebFetch", "TodoWrite")
DECISION_SOURCES = ("config", "user_permanent", "user_temporary", "hook")
API_ERRORS = (
    (529, "Overloaded"),
    (429, "Rate limited: too many requests"),
    (500, "Internal server error"),
    (0, "Request timed out"),
)
PROMPTS = (
    "fix the failing test in tests/test_parser.py",
    "add a --json flag to the status command",
    "explain why the collector drops delta sums",
    "refactor the retry loop into its own function",
    "write a README section about the proxy",
    "why does prometheus show no data for my dashboard?",
)


@dataclass
class Identity:
    session_id: str
    user_id: str
    account_uuid: str
    organization_id: str
    email: str | None
    terminal: str
    start_type: str


@dataclass(order=True)
class Action:
    at: float  # seconds after the run started
    session: int
    seq: int  # tie-breaker keeping plan order stable
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


@dataclass
class SessionPlan:
    index: int
    identity: Identity
    actions: list[Action]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pick_weighted(rng: random.Random, weights: dict[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def make_identity(rng: random.Random, index: int) -> Identity:
    org = "org-" + _uuid(random.Random(0xC1A5)).split("-")[0]  # one organization for the whole class
    user_n = (
        index % 40
    )  # a class of up to 40 people; more sessions than that reuse people (parallel sessions)
    oauth = rng.random() < 0.7
    return Identity(
        session_id=_uuid(rng),
        user_id=f"{random.Random(user_n).getrandbits(256):064x}",
        account_uuid=str(uuid.UUID(int=random.Random(1000 + user_n).getrandbits(128), version=4)),
        organization_id=org,
        email=f"student{user_n:02d}@example.edu" if oauth else None,
        terminal=rng.choice(TERMINALS),
        start_type=rng.choices(("fresh", "resume", "continue"), weights=(8, 1, 1))[0],
    )


def plan_session(
    seed: int,
    index: int,
    duration_s: float,
    rate_per_min: float,
    models: dict[str, float],
    error_rate: float,
) -> SessionPlan:
    """Every action of one session, in time order, within [0, duration_s)."""
    rng = random.Random(f"{seed}:{index}")
    ident = make_identity(rng, index)
    actions: list[Action] = []
    seq = 0

    def add(at: float, kind: str, **data: Any) -> None:
        nonlocal seq
        if at < duration_s:
            actions.append(Action(at, index, seq, kind, data))
            seq += 1

    start = rng.uniform(0, min(2.0, duration_s * 0.1))
    add(start, "session_start", start_type=ident.start_type)
    mean_gap = 60.0 / rate_per_min if rate_per_min > 0 else float("inf")
    t = start + rng.uniform(0.05, 0.3)
    prompt_n = 0
    while t < duration_s:
        gap = rng.expovariate(1.0 / mean_gap) if mean_gap != float("inf") else duration_s
        window = max(0.05, min(gap, 8.0) * 0.9)  # this prompt's work fits before the next prompt
        prompt_n += 1
        text = rng.choice(PROMPTS)
        prompt_id = _uuid(rng)  # every action of this prompt carries it (prompt.id, and its trace)
        add(t, "user_prompt", prompt=text, prompt_id=prompt_id, typing_s=round(rng.uniform(2, 30), 3))
        model = _pick_weighted(rng, models)
        n_requests = rng.choices((1, 2, 3, 4), weights=(3, 4, 2, 1))[0]
        steps: list[tuple[str, dict[str, Any]]] = []
        for r in range(n_requests):
            attempt = 1
            while error_rate > 0 and rng.random() < error_rate and attempt <= 3:
                status, message = rng.choice(API_ERRORS)
                steps.append(
                    (
                        "api_error",
                        {
                            "model": model,
                            "status_code": status,
                            "error": message,
                            "duration_ms": rng.randint(200, 30000),
                            "attempt": attempt,
                            "request_id": "req_" + _uuid(rng).replace("-", "")[:24],
                        },
                    )
                )
                attempt += 1
            input_tokens = rng.randint(5, 4000)
            output_tokens = rng.randint(20, 3000)
            cache_read = rng.randint(0, 60000) if r > 0 or rng.random() < 0.6 else 0
            cache_creation = rng.randint(0, 8000) if rng.random() < 0.4 else 0
            query_source = rng.choices(("main", "subagent", "auxiliary"), weights=(8, 1, 1))[0]
            req_model = model if query_source != "auxiliary" else "claude-haiku-4-5-20251001"
            steps.append(
                (
                    "api_request",
                    {
                        "model": req_model,
                        "input_tokens": input_tokens,
                        "output_tokens": output_tokens,
                        "cache_read_tokens": cache_read,
                        "cache_creation_tokens": cache_creation,
                        "cost_usd": cost_usd(
                            req_model, input_tokens, output_tokens, cache_read, cache_creation
                        ),
                        "duration_ms": rng.randint(800, 45000),
                        "request_id": "req_" + _uuid(rng).replace("-", "")[:24],
                        "query_source": query_source,
                        "speed": rng.choices(("normal", "fast"), weights=(9, 1))[0],
                        "effort": rng.choice(("low", "medium", "high")),
                    },
                )
            )
            if r < n_requests - 1:  # the model asked for a tool; its result feeds the next request
                edit = rng.random() < 0.45
                tool = rng.choice(EDIT_TOOLS if edit else OTHER_TOOLS)
                accept = rng.random() < 0.88
                source = rng.choice(DECISION_SOURCES) if accept else rng.choice(("user_reject", "user_abort"))
                tool_use_id = "toolu_" + _uuid(rng).replace("-", "")[:24]
                data: dict[str, Any] = {
                    "tool_name": tool,
                    "tool_use_id": tool_use_id,
                    "decision": "accept" if accept else "reject",
                    "source": source,
                    "language": rng.choice(LANGUAGES),
                    "model": model,
                    "success": accept and rng.random() < 0.93,
                    "duration_ms": rng.randint(5, 9000),
                    "result_bytes": rng.randint(40, 40000),
                    "added": rng.randint(1, 120) if edit and accept else 0,
                    "removed": rng.randint(0, 60) if edit and accept else 0,
                    "command": "git commit" if tool == "Bash" and rng.random() < 0.25 else None,
                }
                if data["command"] and rng.random() < 0.3:
                    data["command"] = "gh pr create"
                steps.append(("tool", data))
        # After accepted edits people often commit, and now and then open a pull request (Bash tool uses).
        if any(k == "tool" and d["added"] for k, d in steps) and rng.random() < 0.5:
            for command in ("git commit", "gh pr create") if rng.random() < 0.3 else ("git commit",):
                steps.append(
                    (
                        "tool",
                        {
                            "tool_name": "Bash",
                            "tool_use_id": "toolu_" + _uuid(rng).replace("-", "")[:24],
                            "decision": "accept",
                            "source": rng.choice(DECISION_SOURCES),
                            "language": "Shell",
                            "model": model,
                            "success": True,
                            "duration_ms": rng.randint(200, 4000),
                            "result_bytes": rng.randint(80, 2000),
                            "added": 0,
                            "removed": 0,
                            "command": command,
                        },
                    )
                )
        for i, (kind, data) in enumerate(steps):
            add(t + window * (i + 1) / (len(steps) + 1), kind, **{**data, "prompt_id": prompt_id})
        cli_s = sum(d["duration_ms"] for k, d in steps if k in ("api_request", "tool")) / 1000
        add(t + window, "active_time", cli_s=round(cli_s, 3), prompt_id=prompt_id)
        t += gap
    actions.sort()
    return SessionPlan(index, ident, actions)


def plan_run(
    seed: int,
    sessions: int,
    duration_s: float,
    rate_per_min: float,
    models: dict[str, float],
    error_rate: float,
) -> list[SessionPlan]:
    for m in models:
        if m not in MODELS:
            raise ValueError(m)
    return [plan_session(seed, i, duration_s, rate_per_min, models, error_rate) for i in range(sessions)]


# --- a scripted session: the model stub's scenario, played by the emulator --------------------------

SCENARIO_MODEL = "claude-opus-5-5"  # what Claude Code 2.1.332 asks for when no --model is given


def _tool_ms(tool: str, call_input: dict[str, Any]) -> int:
    """How long the tool ran, as the real client would report it. The emulator runs no tool: it can only
    tell a Bash command that starts with `sleep N` (the slow-tool scenario); any other call takes 20 ms."""
    words = str(call_input.get("command", "")).split() if tool == "Bash" else []
    if len(words) >= 2 and words[0] == "sleep":
        try:
            return 20 + int(float(words[1]) * 1000)
        except ValueError:
            pass
    return 20


def _allowed(tool: str, allowed: tuple[str, ...], disallowed: tuple[str, ...]) -> bool:
    """--allowedTools / --disallowedTools as `claude -p` applies them (`Bash(cmd)` allows that tool)."""

    def names(rules: tuple[str, ...]) -> set[str]:
        return {r.split("(", 1)[0] for r in rules}

    return tool not in names(disallowed) and tool in names(allowed)


def _lines(call_input: dict[str, Any], tool: str) -> tuple[int, int]:
    if tool == "Write":
        return len(str(call_input.get("content", "")).splitlines()), 0
    if tool == "Edit":
        return (
            len(str(call_input.get("new_string", "")).splitlines()),
            len(str(call_input.get("old_string", "")).splitlines()),
        )
    return 0, 0


def plan_scenario(scenario: Any, seed: int, duration_s: float) -> SessionPlan:
    """One session doing what a model-stub scenario (labctl.modelstub.scenario.Scenario) scripts, as
    `labctl claude --scenario NAME` makes the real client do it: one prompt, one API request per turn (after
    the turn's faults), the turn's tool uses accepted or refused by the scenario's allowed tools."""
    rng = random.Random(f"{seed}:{scenario.name}")
    ident = make_identity(rng, 0)
    ident.start_type = "fresh"
    ident.terminal = "non-interactive"  # `claude -p`
    model = scenario.model or SCENARIO_MODEL
    prompt_id = _uuid(rng)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("session_start", {"start_type": "fresh"}),
        ("user_prompt", {"prompt": scenario.prompt, "prompt_id": prompt_id, "typing_s": 0.0}),
    ]
    for ti, turn in enumerate(scenario.turns):
        request_id = "req_" + _uuid(rng).replace("-", "")[:24]
        for attempt, fault in enumerate(turn.faults, start=1):
            steps.append(
                (
                    "api_error",
                    {
                        "model": model,
                        "status_code": fault.status,
                        "error": fault.message or f"HTTP {fault.status}",
                        "duration_ms": 50,
                        "attempt": attempt,
                        "request_id": request_id,
                    },
                )
            )
        u = turn.usage
        price_model = model if model in MODELS else "claude-opus-4-1-20250805"
        steps.append(
            (
                "api_request",
                {
                    "model": model,
                    "input_tokens": u.input,
                    "output_tokens": u.output,
                    "cache_read_tokens": u.cache_read,
                    "cache_creation_tokens": u.cache_creation,
                    "cost_usd": cost_usd(price_model, u.input, u.output, u.cache_read, u.cache_creation),
                    "duration_ms": 40 + turn.first_token_delay_ms,
                    "ttft_ms": 20 + turn.first_token_delay_ms,
                    "request_id": request_id,
                    "query_source": "main",
                    "speed": "normal",
                    "effort": "medium",
                    "stop_reason": turn.final_stop_reason,
                },
            )
        )
        for call in turn.tools:
            ok = _allowed(call.name, scenario.allowed_tools, scenario.disallowed_tools)
            added, removed = _lines(call.input, call.name) if ok else (0, 0)
            steps.append(
                (
                    "tool",
                    {
                        "tool_name": call.name,
                        "tool_use_id": "toolu_" + _uuid(rng).replace("-", "")[:24],
                        "decision": "accept" if ok else "reject",
                        "source": "config",
                        "language": "Python",
                        "model": model,
                        "success": ok,
                        "duration_ms": _tool_ms(call.name, call.input) if ok else 20,
                        "result_bytes": 120,
                        "input_bytes": len(str(call.input)),
                        "added": added,
                        "removed": removed,
                        "command": None,
                        "command_line": call.input.get("command"),
                        "request_id": request_id,
                        "turn": ti,
                    },
                )
            )
    cli_s = sum(d.get("duration_ms", 0) for k, d in steps if k in ("api_request", "tool")) / 1000
    steps.append(("active_time", {"cli_s": round(max(cli_s, 0.001), 3)}))
    steps = [
        (kind, {**data, "prompt_id": prompt_id}) if kind != "session_start" else (kind, data)
        for kind, data in steps
    ]
    window = max(0.5, min(duration_s * 0.8, 0.2 * len(steps)))
    # A step is recorded when it ends, and its span began duration_ms earlier: the next step comes no
    # sooner than its own duration after the previous one, so every span sits inside the prompt's
    # interaction span (a 2 s tool call takes 2 s of the run, as with the real client).
    actions, at = [], 0.1
    for i, (kind, data) in enumerate(steps):
        at += max(window / len(steps), data.get("duration_ms", 0) / 1000) if i else 0.0
        actions.append(Action(at, 0, i, kind, data))
    return SessionPlan(0, ident, actions)
