"""Run the emulator: plan the sessions, play their actions in real time, flush, and summarise.

One scheduler thread plays every session's actions from a heap (so 300 sessions cost one thread, not 300);
the SDK's reader and batch-processor threads export in the background exactly as in any instrumented app.
"""

from __future__ import annotations

import heapq
import random
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from labctl.emulator.catalog import DEFAULT_MODEL_MIX, MODEL_ALIASES, MODELS
from labctl.emulator.exporters import RunStats, install_sdk_log_watcher, remove_sdk_log_watcher
from labctl.emulator.session import Action, SessionPlan, plan_run
from labctl.emulator.settings import Settings
from labctl.emulator.telemetry import Telemetry
from labctl.errors import LabError


@dataclass
class EmitOptions:
    sessions: int = 3
    duration_s: float = 30.0
    rate_per_min: float = 6.0  # prompts per minute per session
    models: dict[str, float] = field(default_factory=lambda: parse_models(None))
    error_rate: float = 0.03  # share of API requests that fail (then are retried)
    seed: int | None = None
    marker: str | None = None
    quiet_sdk: bool = False  # don't echo the SDK's log lines (they are still counted)
    scenario: str | None = None  # play this model-stub scenario (lab/scenarios/NAME.yaml) as one session

    def validate(self) -> None:
        if self.sessions < 1:
            raise LabError(f"--sessions {self.sessions} must be at least 1", "e.g. --sessions 3")
        if self.duration_s <= 0:
            raise LabError(f"--duration {self.duration_s} must be positive (seconds)", "e.g. --duration 30")
        if self.rate_per_min < 0:
            raise LabError(
                f"--rate {self.rate_per_min} must not be negative", "prompts per minute, e.g. --rate 6"
            )
        if not 0 <= self.error_rate <= 1:
            raise LabError(
                f"--error-rate {self.error_rate} must be between 0 and 1", "e.g. --error-rate 0.05"
            )


def parse_models(text: str | None) -> dict[str, float]:
    """`sonnet=6,haiku=3` (aliases or full model ids) → {model id: weight}."""
    if not text:
        text = ",".join(f"{k}={v:g}" for k, v in DEFAULT_MODEL_MIX.items())
    out: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        model = MODEL_ALIASES.get(name.strip(), name.strip())
        if model not in MODELS:
            raise LabError(
                f"unknown model {name!r} in --models",
                f"use {', '.join(MODEL_ALIASES)} or a full id ({', '.join(MODELS)})",
            )
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise LabError(
                f"weight {weight!r} for {name} in --models is not a number", "e.g. sonnet=6,haiku=3"
            ) from None
        if w < 0:
            raise LabError(
                f"weight for {name} in --models is negative", "weights are relative shares, e.g. 6"
            )
        out[model] = w
    if not any(out.values()):
        raise LabError("--models gives every model weight 0", "give at least one model a positive weight")
    return out


class Emulator:
    def __init__(self, settings: Settings, options: EmitOptions, console_out: IO[str] | None = None) -> None:
        options.validate()
        self.settings = settings
        self.options = options
        self.seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
        self.stats = RunStats()
        self.console_out = console_out or sys.stdout
        if options.scenario:
            from labctl.emulator.session import plan_scenario
            from labctl.modelstub.client import scenario as load_scenario

            self.plans: list[SessionPlan] = [
                plan_scenario(load_scenario(options.scenario), self.seed, options.duration_s)
            ]
        else:
            self.plans = plan_run(
                self.seed,
                options.sessions,
                options.duration_s,
                options.rate_per_min,
                options.models,
                options.error_rate,
            )
        self.stop = threading.Event()
        self.actions_done = 0
        self.lag_max_s = 0.0

    def run(self, on_tick: Callable[[float, int], None] | None = None) -> dict[str, Any]:
        watcher = install_sdk_log_watcher(self.stats, quiet=self.options.quiet_sdk)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t_init = time.monotonic()
        telemetry = Telemetry(
            self.settings,
            self.stats,
            marker=self.options.marker,
            console_out=self.console_out,
            service_name=self.settings.service_name,
        )
        # Claude Code sets telemetry up before the session starts: the session clock (and the export times
        # in the summary) start once the exporters and readers exist.
        t_start = time.monotonic()
        self.stats.started = t_start
        init_s = t_start - t_init
        try:
            heap: list[Action] = [a for p in self.plans for a in p.actions]
            heapq.heapify(heap)
            by_index = {p.index: p for p in self.plans}
            last_tick = 0.0
            while heap and not self.stop.is_set():
                action = heap[0]
                now = time.monotonic() - t_start
                if action.at > now:
                    self.stop.wait(min(action.at - now, 0.5))
                    continue
                heapq.heappop(heap)
                self.lag_max_s = max(self.lag_max_s, now - action.at)
                telemetry.record(by_index[action.session], action)
                self.actions_done += 1
                if on_tick and now - last_tick >= 1.0:
                    on_tick(now, self.actions_done)
                    last_tick = now
            # Stay up for the whole duration (a scrape of the prometheus exporter needs the process alive).
            remaining = self.options.duration_s - (time.monotonic() - t_start)
            if remaining > 0:
                self.stop.wait(remaining)
        except KeyboardInterrupt:
            pass
        finally:
            run_s = time.monotonic() - t_start
            flushed = telemetry.shutdown(self.settings.shutdown_timeout_ms / 1000)
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            remove_sdk_log_watcher(watcher)
        cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return {
            "seed": self.seed,
            "marker": self.options.marker,
            "sessions": [p.identity.session_id for p in self.plans],
            "settings": self.settings.describe(),
            "notices": [n.__dict__ for n in self.settings.notices],
            "telemetry_init_seconds": round(init_s, 3),
            "run_seconds": round(run_s, 3),
            "actions": self.actions_done,
            "actions_per_second": round(self.actions_done / run_s, 2) if run_s else 0.0,
            "max_lag_seconds": round(self.lag_max_s, 3),
            "cpu_seconds": round(cpu_s, 3),
            "cpu_percent": round(100 * cpu_s / run_s, 1) if run_s else 0.0,
            "metric_increments": telemetry.counts["metric_increments"],
            "events": telemetry.counts["events"],
            "shutdown_flushed": flushed,
            "exporters": [s.as_dict() for s in self.stats.exporters.values()],
            "sdk_messages": list(self.stats.sdk_messages),
        }
