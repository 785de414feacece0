"""The `emit` and `env` commands' bodies. `labctl emit`/`labctl env` register these functions; the emulator
package's own entry point (`python -m labctl.emulator emit`) runs the very same functions without loading
labctl's other command modules (the matrix starts one emulator per case and saves that start-up time)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task
from rich.text import Text

from labctl import ui
from labctl.emulator.labenv import TRACES_ON, client_env, lab_env, render, stores_traces, stub_running
from labctl.emulator.runner import EmitOptions, Emulator, parse_models
from labctl.emulator.settings import load_settings
from labctl.state import LabState


def env_command(
    protocol: Annotated[str, typer.Option("--protocol", help="grpc, http/protobuf or http/json")] = "grpc",
    shell: Annotated[str, typer.Option("--shell", help="sh (bash/zsh), fish or powershell")] = "sh",
    json_out: Annotated[bool, typer.Option("--json", help="print the variables as JSON")] = False,
    real_account: Annotated[
        bool, typer.Option("--real-account", help="your own Claude account answers, not the lab's model stub")
    ] = False,
) -> None:
    """Print the environment block to paste before starting a real Claude Code against the running lab.

    With the lab's model stub running (every module), the block also points the client's model requests
    at the stub with a dummy key: no account needed, nothing leaves the machine. Otherwise (or with
    --real-account) the client uses your own login or key. From module-3 on, where Jaeger stores them,
    it also switches the client's spans on (its enhanced telemetry beta), to the same endpoint."""
    lab = LabState.current()
    env = client_env(lab, protocol, real_account=real_account)
    if json_out:
        ui.print_json(env)
        return
    stub = not real_account and stub_running(lab)
    sys.stdout.write(f"# Claude Code → labctl lab ({lab.stage}, {protocol}). Paste, then run `claude`.\n")
    if stub:
        sys.stdout.write(
            "# The model is the lab's stub (offline, scripted: lab/scenarios/).\n"
            "# `labctl env --real-account` uses your own account instead.\n"
        )
    else:
        sys.stdout.write(
            "# The model is your own Claude account (your login or ANTHROPIC_API_KEY);\n"
            "# usage is billed to it.\n"
        )
    if stores_traces(lab):
        sys.stdout.write("# Spans on (Claude Code's enhanced telemetry beta): Jaeger stores them.\n")
    else:
        # Before the trace store nothing keeps spans; the proxy still shows them, for those who want to look.
        switches = " ".join(f"{k}={v}" for k, v in TRACES_ON.items())
        sys.stdout.write(
            "# Spans are off until module-3, where Jaeger stores them. To see them now\n"
            f"# on the proxy's inspector page, also export:\n#   {switches}\n"
        )
    sys.stdout.write(render(env, shell) + "\n")


def _short(text: str | None, limit: int = 90) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary_rows(summary: dict[str, Any]) -> list[list[Any]]:
    return [
        [e["name"], e["sent"], e["failed"], e["retried"], e["items_sent"], _short(e["last_error"])]
        for e in summary["exporters"]
    ]


def emit_command(
    sessions: Annotated[int, typer.Option("--sessions", help="concurrent Claude Code sessions")] = 3,
    duration: Annotated[float, typer.Option("--duration", help="seconds to run")] = 30.0,
    rate: Annotated[float, typer.Option("--rate", help="prompts per minute per session")] = 6.0,
    models: Annotated[
        str | None, typer.Option("--models", help="model mix, e.g. sonnet=6,haiku=3,opus=1")
    ] = None,
    error_rate: Annotated[
        float, typer.Option("--error-rate", help="share of API requests that fail first")
    ] = 0.03,
    seed: Annotated[int | None, typer.Option("--seed", help="same seed, same sessions and values")] = None,
    marker: Annotated[
        str | None, typer.Option("--marker", help="tag (resource + attribute lab.marker)")
    ] = None,
    from_lab: Annotated[
        bool, typer.Option("--from-lab", help="use the `labctl env` block of the running lab")
    ] = False,
    protocol: Annotated[
        str, typer.Option("--protocol", help="with --from-lab: grpc, http/protobuf, http/json")
    ] = "grpc",
    json_out: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
    summary_file: Annotated[
        Path | None, typer.Option("--summary-file", help="also write the summary here")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="don't echo the SDK's log lines")] = False,
    fail_on_error: Annotated[
        bool, typer.Option("--fail-on-error", help="exit 3 when a batch was not delivered")
    ] = False,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="play one model-stub scenario (lab/scenarios/NAME.yaml) as `labctl claude` does",
        ),
    ] = None,
) -> None:
    """Emulate Claude Code's telemetry, configured only by Claude Code's environment variables
    (CLAUDE_CODE_ENABLE_TELEMETRY, OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_PROTOCOL, ...).
    Exits 4 when OTLP exporters were configured and nothing at all was delivered."""
    env = dict(os.environ)
    if from_lab:
        env.update(lab_env(LabState.current(), protocol))
    settings = load_settings(env)
    options = EmitOptions(
        sessions=sessions,
        duration_s=duration,
        rate_per_min=rate,
        models=parse_models(models),
        error_rate=error_rate,
        seed=seed,
        marker=marker,
        quiet_sdk=quiet,
        scenario=scenario,
    )
    console_active = "console" in settings.metrics_exporters or "console" in settings.logs_exporters
    # Console exporters own stdout (as in Claude Code); our own lines then go to stderr.
    out = ui.err_console if (console_active or json_out) else ui.console
    for n in settings.notices:
        if n.level == "warning":
            ui.warn(f"{n.variable}: {n.message}")
        else:
            ui.err_console.print(f"note: {n.variable}: {n.message}")
    emulator = Emulator(settings, options)
    targets = ", ".join(
        f"{sig}→{t.protocol} {t.url}"
        for sig, t in (
            ("metrics", settings.metrics_otlp),
            ("logs", settings.logs_otlp),
            ("traces", settings.traces_otlp),
        )
        if t
    )
    what = f"scenario {scenario} as one" if scenario else str(sessions)
    out.print(
        f"emulating {what} Claude Code session(s) for {duration:g}s (seed {emulator.seed}"
        + (f", marker {marker}" if marker else "")
        + ")"
        + (
            f": {targets}"
            if targets
            else f": exporters {', '.join(settings.metrics_exporters + settings.logs_exporters) or 'none'}"
        )
    )
    if not settings.exports_anything:
        out.print(
            "[yellow]nothing will be exported[/] — to send to the running lab: `labctl emit --from-lab`, "
            'or `eval "$(labctl env)"` first'
        )

    last_print = [0.0]

    def tick(now: float, actions: int) -> None:
        # A heartbeat every 10 s on long runs, so a student sees the emulator is alive and what it sent.
        if now - last_print[0] >= 10:
            last_print[0] = now
            sent = sum(e.sent for e in emulator.stats.exporters.values())
            failed = sum(e.failed for e in emulator.stats.exporters.values())
            out.print(f"  {now:5.0f}s  {actions} actions, {sent} batches sent, {failed} failed")

    # On a terminal a live line between the heartbeats: a 20 s run is otherwise silent for its first 10 s.
    live = out.is_terminal and not json_out and not console_active
    with _live_status(out, emulator, duration) if live else contextlib.nullcontext():
        summary = emulator.run(on_tick=None if json_out else tick)
    if summary_file:
        summary_file.parent.mkdir(parents=True, exist_ok=True)
        summary_file.write_text(json.dumps(summary, indent=2))
    if json_out:
        ui.print_json(summary)
    else:
        out.print(
            f"{summary['actions']} actions → {summary['metric_increments']} counter increments, "
            f"{summary['events']} events in {summary['run_seconds']:.1f}s (CPU {summary['cpu_percent']}%)"
        )
        if summary["exporters"]:
            ui.table(
                ["exporter", "sent", "failed", "retried", "items sent"],
                [row[:5] for row in _summary_rows(summary)],
                title="exports",
                out=out,
            )
            # Errors are sentences with URLs in them: printed whole below the table, never cut or folded.
            for e in summary["exporters"]:
                if e["last_error"]:
                    out.print(f"[bold]{e['name']}[/] last error:", highlight=False)
                    for line in ui.wrap(" ".join(e["last_error"].split()), out.width, 2):
                        out.print("  " + escape(line), soft_wrap=True, highlight=False)
        if not summary["shutdown_flushed"]:
            out.print(
                "[yellow]OpenTelemetry shutdown timeout: the final flush did not finish "
                f"within {settings.shutdown_timeout_ms} ms (CLAUDE_CODE_OTEL_SHUTDOWN_TIMEOUT_MS)[/]"
            )
    _exit_when_nothing_delivered(summary, targets, errors_shown=not json_out)
    failed = any(e["failed"] for e in summary["exporters"])
    if fail_on_error and failed:
        raise typer.Exit(3)


def status_line(emulator: Emulator, elapsed: float, duration: float) -> str:
    """What the live line says: time run, actions done, batches the exporters sent and failed."""
    exporters = list(emulator.stats.exporters.values())  # a copy: the SDK's threads may add one meanwhile
    sent, failed = sum(e.sent for e in exporters), sum(e.failed for e in exporters)
    return (
        f"{min(elapsed, duration):.0f}s of {duration:g}s: {emulator.actions_done} actions, "
        f"{sent} batches sent, {failed} failed"
    )


@contextlib.contextmanager
def _live_status(out: Console, emulator: Emulator, duration: float) -> Iterator[None]:
    """A transient spinner line, redrawn several times a second from the emulator's counters."""
    start = time.monotonic()

    class _Status(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(status_line(emulator, time.monotonic() - start, duration))

    with Progress(SpinnerColumn(), _Status(), console=out, transient=True) as prog:
        prog.add_task("emit", total=None)
        yield


NOTHING_DELIVERED = 4  # the exit code: OTLP exporters were configured and not one item reached the endpoint


def _exit_when_nothing_delivered(summary: dict[str, Any], targets: str, errors_shown: bool) -> None:
    """A run whose OTLP exporters delivered nothing is a failure a script must see (exit 4), with the
    last error in full — not a table that looks like a run and exit 0."""
    otlp = [e for e in summary["exporters"] if "otlp" in e["name"]]
    produced = summary["metric_increments"] or summary["events"]
    if not otlp or not produced or any(e["items_sent"] for e in otlp):
        return
    errors = [e["last_error"] for e in otlp if e["last_error"]]
    messages = [m for m in summary.get("sdk_messages", []) if "shutdown can only be called once" not in m]
    # The exporters' last errors are printed above, under the table; else the last one in full here.
    last = " ".join((errors[-1] if errors else messages[-1] if messages else "").split())
    ui.error(
        f"nothing was delivered to {targets or 'the OTLP endpoint'}"
        + (
            " (last error above)"
            if errors and errors_shown
            else f": {last}"
            if last
            else " (no error was reported before the run ended)"
        ),
        "is the lab up (`labctl status`)? is the endpoint right (`labctl env`)? with `up --auth`, send "
        "the token (`labctl emit --from-lab` does); `labctl check --layer 1` shows where it stops",
    )
    raise typer.Exit(NOTHING_DELIVERED)
