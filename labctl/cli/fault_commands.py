"""`labctl break`, `labctl heal`, `labctl faults`: thin wrappers over labctl.faults.engine."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from labctl import ui
from labctl.cli.main import app
from labctl.errors import LabError
from labctl.faults import engine
from labctl.faults.registry import FAULTS
from labctl.state import LabState


def _fault_help() -> str:
    lines = []
    for f in FAULTS.values():
        opts = " ".join(f"[--{o.name} {'|'.join(o.choices) if o.choices else 'N'}]" for o in f.options)
        lines.append(f"{f.name} {opts}: {f.summary}")
    return "\n\n".join(lines)


@app.command(
    "break",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="Inject a fault into the running lab (it proves it took effect before returning).\n\n" + _fault_help(),
)
def break_(
    ctx: typer.Context,
    fault: Annotated[str, typer.Argument(help="Fault name (see `labctl faults --all`).")],
    explain: Annotated[bool, typer.Option("--explain", help="Also print what exactly was changed and the "
                                          "evidence that it took effect (gives the answer away).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    fctx = engine.context()
    started = time.monotonic()
    entry = engine.break_fault(fctx, fault, list(ctx.args))
    seconds = round(time.monotonic() - started, 2)
    if json_out:
        ui.print_json({"fault": fault, "seconds": seconds, **{k: v for k, v in entry.items() if k != "record"}})
        return
    # By default only what was done, in neutral terms: finding the cause is the student's exercise.
    ui.success(f"{fault}: {engine.neutral_summary(entry)}; the fault is in effect (verified, {seconds:.1f}s)")
    if explain:
        opts = " ".join(f"--{k} {v}" for k, v in entry["options"].items())
        ui.info(f"  options: {opts or '(none)'}")
        for line in entry.get("evidence", []):
            ui.info(f"  · {line}")
    else:
        ui.info("  (details: `labctl break ... --explain` or `labctl faults --json` — they give the answer away)")
    ui.info(f"next: `labctl check` to find the broken layer; `labctl heal {fault}` to undo it")


@app.command(help="Undo a fault (or all of them) and restore the lab exactly as it was.")
def heal(
    fault: Annotated[str | None, typer.Argument(help="The fault to heal (default: all active).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Heal every active fault.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    fctx = engine.context()
    if fault and all_:
        raise LabError("give a fault name or --all, not both", "e.g. `labctl heal network` or `labctl heal --all`")
    if fault and fault not in fctx.lab.faults:
        engine.get_fault(fault)  # an unknown name stays an error
        # Healing what is not broken is a no-op, not a failure: the lab already is as it should be.
        active = ", ".join(sorted(fctx.lab.faults)) or "none"
        if json_out:
            ui.print_json({"healed": {}, "not_active": fault, "active": sorted(fctx.lab.faults)})
        else:
            ui.info(f"{fault} is not active: nothing to heal (active faults: {active})")
        return
    healed = engine.heal_all(fctx) if (all_ or not fault) else {fault: engine.heal_fault(fctx, fault)}
    # Healed means usable: the proxy may still be in its retry backoff (it is told to retry now).
    pending, scrapes_down = engine.await_usable(fctx) if healed else ([], [])
    if json_out:
        ui.print_json({"healed": healed, "usable": not pending, "pending": pending,
                       "last_scrape_failed": scrapes_down})
        return
    if not healed:
        ui.info("no active faults: nothing to heal")
    for name, seconds in healed.items():
        ui.success(f"healed {name} ({seconds:.1f}s)")
    for line in pending:
        ui.warn(f"{line} — `labctl check` may still fail until it recovers")
    if scrapes_down:
        ui.info(f"Prometheus' last scrape of {', '.join(scrapes_down)} was before the heal; its next one "
                "(at most one scrape interval away) shows it up again, and `labctl check` waits for it")
    if healed and not pending:
        ui.info("the proxy delivers again; next: `labctl check` should be green")


@app.command(help="List active faults (persisted in the lab's state), or with --all every fault there is.")
def faults(
    all_: Annotated[bool, typer.Option("--all", help="List every available fault and its options.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    if all_:
        rows: list[dict[str, Any]] = [{"name": f.name, "layer": f.layer, "summary": f.summary,
                 "options": {o.name: {"choices": list(o.choices), "default": o.default, "help": o.help}
                             for o in f.options},
                 "alert": f.alert({o.name: o.default for o in f.options}), "playbook": f.playbook}
                for f in FAULTS.values()]
        if json_out:
            ui.print_json(rows)
            return
        ui.table(["fault", "layer", "what it does", "options"],
                 [[r["name"], r["layer"], r["summary"],
                   " ".join(f"--{k} {'|'.join(v['choices']) or 'N'} (default {v['default']})"
                            for k, v in r["options"].items())] for r in rows], title="available faults")
        return
    lab = LabState.current()
    active = engine.active_faults(lab)
    if json_out:
        ui.print_json(active)
        return
    if not active:
        ui.info("no active faults (`labctl faults --all` lists what `labctl break` can do)")
        return
    ui.table(["fault", "options", "since", "layer", "evidence"],
             [[a["name"], " ".join(f"{k}={v}" for k, v in a["options"].items()),
               time.strftime("%H:%M:%S", time.localtime(a["since"])), a["layer"],
               "; ".join(a.get("evidence", []))] for a in active], title="active faults")
