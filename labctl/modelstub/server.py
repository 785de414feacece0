"""The model stub's HTTP server: the Anthropic Messages API endpoints Claude Code calls, answered from scenarios.

Which turn a request is comes from the conversation itself (the number of assistant messages it carries),
so the client's retries of a failed turn ask for the same turn again; attempts are counted per session
(the client's `X-Claude-Code-Session-Id`) to play a turn's scripted faults in order. Requests without
tools (titles, quota probes) are side requests: they never consume a scripted turn. (Claude Code 2.1.332
run by `labctl claude` sends nothing else: with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC unset it also
probes `HEAD /api/hello`, answered 200.)

Nothing a client sends is logged but its shape: no prompt or answer text reaches the stub's log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from labctl.modelstub import answers
from labctl.modelstub.request_checks import (
    ApiError,
    json_body,
    require_key,
    require_messages,
    require_model,
    session_id,
    workdir,
)
from labctl.modelstub.scenario import Scenario, Turn

MAX_BODY_BYTES = 32 * 1024 * 1024  # the Messages API's own request size limit
SCENARIO_HEADER = "x-lab-scenario"  # `labctl claude` sets it (ANTHROPIC_CUSTOM_HEADERS) to pick a scenario
AGENT_HEADER = "x-claude-code-agent-id"  # the client marks a subagent's requests with it
KNOWN_MODELS = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5")
_MAX_SESSIONS = 2000  # attempt counters kept (oldest sessions forgotten first)
# Set on a response whose request already has its line in the stub's log.
_RECORDED = web.ResponseKey("labctl_recorded", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Stats:
    """What the stub did, for `GET /stub/stats`, tests and the benchmark (its own time per turn)."""

    started: float = field(default_factory=time.time)
    turns: int = 0
    side: int = 0
    faults: int = 0
    after_script: int = 0
    bad_requests: int = 0
    turn_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    turn_cpu_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    def add(self, clock: TurnClock) -> None:
        wall, cpu = clock.spent_ms()
        self.turn_ms.append(wall)
        self.turn_cpu_ms.append(cpu)

    def as_dict(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "side_requests": self.side,
            "faults": self.faults,
            "after_script": self.after_script,
            "bad_requests": self.bad_requests,
            "stub_ms_per_turn": _summary(self.turn_ms),  # wall time: includes waiting for a CPU
            "stub_cpu_ms_per_turn": _summary(self.turn_cpu_ms),  # the stub's own work
        }


def _summary(values: deque[float]) -> dict[str, Any]:
    ms = sorted(values)

    def rank(q: float) -> float | None:
        return round(ms[min(len(ms) - 1, int(q * len(ms)))], 3) if ms else None

    return {
        "count": len(ms),
        "mean": round(sum(ms) / len(ms), 3) if ms else None,
        "p50": rank(0.5),
        "p95": rank(0.95),
        "max": rank(1.0),
    }


class TurnClock:
    """The stub's own time for one answer, wall and CPU, without a scripted first-token delay."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.thread_time()
        self.paused = 0.0

    async def sleep(self, seconds: float) -> None:
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        self.paused += time.perf_counter() - start

    def spent_ms(self) -> tuple[float, float]:
        return (
            (time.perf_counter() - self.wall - self.paused) * 1000,
            (time.thread_time() - self.cpu) * 1000,
        )


class ModelStub:
    def __init__(self, scenarios: dict[str, Scenario], default: str, log_path: Path | None = None) -> None:
        if default not in scenarios:
            raise ValueError(f"default scenario {default!r} is not among {sorted(scenarios)}")
        self.scenarios = scenarios
        self.default = default
        self.stats = Stats()
        self.attempts: OrderedDict[tuple[str, str, int], int] = OrderedDict()
        self.side_counter = 0
        self._log = log_path.open("a", buffering=1) if log_path else None

    # --- the application -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._errors])
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model}", self.model)
        app.router.add_route("HEAD", "/api/hello", self.hello)  # the client's reachability probe
        app.router.add_get("/", self.index)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/stub/stats", self.get_stats)
        app.router.add_get("/stub/scenarios", self.list_scenarios)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._log:
            self._log.close()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every failure leaves as the API's error shape with a request-id: never a traceback, never a crash."""
        resp = await self._answer_or_error(request, handler)
        if not resp.prepared and "request-id" not in resp.headers:  # as the API: every answer has one
            resp.headers["request-id"] = answers.stable_id("req", "other", time.monotonic_ns())
        if self._log and not resp.get(_RECORDED) and request.path != "/healthz":  # the lab's probes: noise
            # Every request without a line of its own (turns, faults, side requests): what else the client calls.
            self._log.write(
                json.dumps(
                    {
                        "time": round(time.time(), 3),
                        "kind": "http",
                        "method": request.method,
                        "path": request.path[:200],
                        "status": resp.status,
                    }
                )
                + "\n"
            )
        return resp

    async def _answer_or_error(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return self._error(exc.status, exc.error_type, exc.message, exc.headers)
        except web.HTTPRequestEntityTooLarge:
            return self._error(
                413, "request_too_large", f"Request exceeds the maximum size of {MAX_BODY_BYTES} bytes"
            )
        except web.HTTPNotFound:
            return self._error(404, "not_found_error", f"Not found: {request.method} {request.path}")
        except web.HTTPMethodNotAllowed:
            return self._error(
                405, "invalid_request_error", f"Method {request.method} is not allowed on {request.path}"
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return self._error(exc.status, "invalid_request_error", exc.reason or "bad request")
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # the API shape, whatever went wrong
            return self._error(500, "api_error", f"lab model stub internal error: {type(exc).__name__}")

    def _error(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        if status < 500:
            self.stats.bad_requests += 1
        request_id = answers.stable_id("req", "error", time.monotonic_ns())
        return web.json_response(
            answers.error_body(error_type, message, request_id),
            status=status,
            headers={"request-id": request_id, **(headers or {})},
        )

    # --- small endpoints ---------------------------------------------------------------------------

    async def hello(self, _request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def index(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "service": "labctl model stub: a local stand-in for the Anthropic Messages API",
                "endpoints": [
                    "POST /v1/messages",
                    "POST /v1/messages/count_tokens",
                    "GET /v1/models",
                    "GET /stub/stats",
                    "GET /stub/scenarios",
                ],
                "default_scenario": self.default,
                "scenario_header": SCENARIO_HEADER,
            }
        )

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "scenarios": len(self.scenarios)})

    async def get_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    async def list_scenarios(self, _request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "name": s.name,
                    "description": s.description,
                    "turns": len(s.turns),
                    "model": s.model,
                    "default": s.name == self.default,
                }
                for s in self.scenarios.values()
            ]
        )

    def _model_ids(self) -> list[str]:
        ids = list(KNOWN_MODELS)
        for scenario in self.scenarios.values():
            for name in (scenario.model, *(t.model for t in scenario.turns)):
                if name and name not in ids:
                    ids.append(name)
        return ids

    def _model_doc(self, model_id: str) -> dict[str, Any]:
        display = model_id.removeprefix("claude-").replace("-", " ").title()
        return {
            "type": "model",
            "id": model_id,
            "display_name": f"Claude {display} (lab stub)",
            "created_at": "2026-01-01T00:00:00Z",
        }

    async def models(self, _request: web.Request) -> web.Response:
        ids = self._model_ids()
        return web.json_response(
            {
                "data": [self._model_doc(m) for m in ids],
                "has_more": False,
                "first_id": ids[0],
                "last_id": ids[-1],
            }
        )

    async def model(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model"]
        if model_id not in self._model_ids():
            raise ApiError(404, "not_found_error", f"model: {model_id}")
        return web.json_response(self._model_doc(model_id))

    async def count_tokens(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        require_model(body)
        require_messages(body)
        # Deterministic and roughly the API's ratio: about four characters a token.
        size = len(
            json.dumps([body.get("system"), body["messages"], body.get("tools")], separators=(",", ":"))
        )
        return web.json_response({"input_tokens": max(1, size // 4)})

    # --- /v1/messages --------------------------------------------------------------------------------

    def _scenario(self, request: web.Request) -> Scenario:
        name = request.headers.get(SCENARIO_HEADER, "").strip() or self.default
        if name not in self.scenarios:
            raise ApiError(
                400,
                "invalid_request_error",
                f"lab model stub: unknown scenario {name!r} (known: {', '.join(self.scenarios)})",
            )
        return self.scenarios[name]

    async def messages(self, request: web.Request) -> web.StreamResponse:
        clock = TurnClock()
        require_key(request)
        body = await json_body(request)
        model = require_model(body)
        messages = require_messages(body)
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ApiError(400, "invalid_request_error", "max_tokens: Field required (a whole number ≥ 1)")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, "invalid_request_error", "stream: Input should be a valid boolean")
        scenario = self._scenario(request)
        session = session_id(request, body)
        tools = body.get("tools")
        if not tools:  # a side request (title, quota probe): never a scripted turn
            self.side_counter += 1
            self.stats.side += 1
            ids = answers.ids_for(scenario.seed, scenario.name, session, -self.side_counter, 0)
            self._record("side", scenario, session, None, 0, 200, model)
            return await self._answer(request, scenario.side, ids, model, None, stream, clock, counted=False)

        # A subagent's conversation plays the scenario's `subagent` script, counted on its own.
        agent = request.headers.get(AGENT_HEADER, "").strip()[:64]
        script = scenario.subagent if agent else scenario.turns
        conversation = (
            f"{session}/agent-{agent}" if agent else session
        )  # ids and attempts are per conversation
        turn_index = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
        key = (conversation, scenario.name, turn_index)
        attempt = self.attempts.pop(key, 0)
        self.attempts[key] = attempt + 1
        while len(self.attempts) > _MAX_SESSIONS:
            self.attempts.popitem(last=False)

        turn = script[turn_index] if turn_index < len(script) else None
        if turn is None:
            self.stats.after_script += 1
            self._record("after_script", scenario, session, turn_index, attempt, 200, model, agent)
            ids = answers.ids_for(scenario.seed, scenario.name, conversation, turn_index, 0)
            return await self._answer(
                request, Turn(text=scenario.after_script), ids, model, None, stream, clock, counted=False
            )
        request_id = answers.stable_id("req", scenario.seed, scenario.name, conversation, turn_index, attempt)
        if attempt < len(turn.faults):
            fault = turn.faults[attempt]
            self.stats.faults += 1
            self._record("fault", scenario, session, turn_index, attempt, fault.status, model, agent)
            if not fault.mid_stream or not stream:
                headers = {"request-id": request_id}
                if fault.retry_after is not None:
                    headers["retry-after"] = f"{fault.retry_after:g}"
                return self._recorded(
                    web.json_response(
                        answers.fault_body(fault, request_id), status=fault.status, headers=headers
                    )
                )
            ids = answers.ids_for(scenario.seed, scenario.name, conversation, turn_index, 0)
            resp = await self._open_stream(request, request_id)
            await resp.write(answers.message_start(turn, ids, turn.model or model))
            await resp.write(answers.sse("error", answers.fault_body(fault, request_id)))
            await resp.write_eof()
            return self._recorded(resp)
        self.stats.turns += 1
        self._record("turn", scenario, session, turn_index, attempt, 200, turn.model or model, agent)
        ids = answers.ids_for(scenario.seed, scenario.name, conversation, turn_index, len(turn.tools))
        return await self._answer(
            request,
            turn,
            ids,
            turn.model or model,
            workdir(body),
            stream,
            clock,
            request_id=request_id,
            counted=True,
        )

    async def _open_stream(self, request: web.Request, request_id: str) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": request_id,
            }
        )
        await resp.prepare(request)
        return resp

    async def _answer(
        self,
        request: web.Request,
        turn: Turn,
        ids: answers.AnswerIds,
        model: str,
        workdir: str | None,
        stream: bool,
        clock: TurnClock,
        *,
        counted: bool,
        request_id: str | None = None,
    ) -> web.StreamResponse:
        request_id = request_id or answers.stable_id("req", ids.message)
        delay = turn.first_token_delay_ms / 1000
        if not stream:
            doc = answers.message(turn, ids, model, workdir)
            if delay:
                await clock.sleep(delay)
            answer = web.json_response(doc, headers={"request-id": request_id})
            if counted:
                self.stats.add(clock)
            return self._recorded(answer)
        resp = await self._open_stream(request, request_id)
        if delay:
            await clock.sleep(delay)  # the slow first token: headers are out, message_start waits
        chunks = [answers.message_start(turn, ids, model), *answers.stream_body(turn, ids, workdir)]
        await resp.write(b"".join(chunks))
        await resp.write_eof()
        if counted:
            self.stats.add(clock)
        return self._recorded(resp)

    def _recorded(self, resp: web.StreamResponse) -> web.StreamResponse:
        resp[_RECORDED] = True
        return resp

    def _record(
        self,
        kind: str,
        scenario: Scenario,
        session: str,
        turn: int | None,
        attempt: int,
        status: int,
        model: str,
        agent: str = "",
    ) -> None:
        """One line per answered request in the stub's log: its shape, never its content."""
        if self._log:
            line: dict[str, Any] = {
                "time": round(time.time(), 3),
                "kind": kind,
                "scenario": scenario.name,
                "session": session,
                "turn": turn,
                "attempt": attempt,
                "status": status,
                "model": model,
            }
            if agent:
                line["agent"] = agent  # a subagent's request (its `subagent` script)
            self._log.write(json.dumps(line) + "\n")
