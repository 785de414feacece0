"""`labctl break`, `labctl heal`, `labctl faults`: thin wrappers over labctl.faults.engine."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from labctl import ui
from labctl.errors import LabError
from labctl.faults import engine
from labctl.faults.registry import FAULTS
from labctl.state import LabState

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)


def _fault_help() -> str:
    lines = []
    for f in FAULTS.values():
        opts = " ".join(f"[--{o.name} {'|'.join(o.choices) if o.choices else 'N'}]" for o in f.options)
        lines.append(f"{f.name} {opts}: {f.summary}")
    return "\n\n".join(lines)


@cli.command(
    "break",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="Inject a fault into the running lab (it proves it took effect before returning).\n\n"
    + _fault_help(),
)
def break_(
    ctx: typer.Context,
    fault: Annotated[
        str | None,
        typer.Argument(help="Fault name (see `labctl faults --all`); with --random, leave it out."),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Also print what exactly was changed and the "
            "evidence that it took effect (gives the answer away).",
        ),
    ] = False,
    hidden: Annotated[
        bool,
        typer.Option(
            "--hidden",
            help="A blind challenge: nothing names the fault until `labctl reveal` grades the diagnosis.",
        ),
    ] = False,
    random_: Annotated[
        bool,
        typer.Option(
            "--random",
            help="Draw the fault (and its options) from the pool "
            "of faults this lab can take; implies --hidden.",
        ),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed for --random (the same seed draws the same fault on the same stage)."
        ),
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool", help="With --random: comma-separated fault names to draw from (default: every fault)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    fctx = engine.context()
    if random_:
        hidden = True
        if fault:
            raise LabError("give a fault name or --random, not both", "e.g. `labctl break --random --seed 7`")
    elif not fault:
        raise LabError("which fault? give its name, or --random", "`labctl faults --all` lists them")
    if hidden and explain:
        raise LabError("--explain would give a hidden fault away", "leave out --explain (or --hidden)")
    started = time.monotonic()
    if random_:
        from labctl.faults import blind

        grafana_up = "grafana" in fctx.running and fctx.runtime.is_running("grafana")
        names = [n.strip() for n in pool.split(",") if n.strip()] if pool else None
        for name in names or []:
            engine.get_fault(name)
        fault, opts = blind.draw(fctx.running, fctx.lab.runtime, grafana_up, seed, names)
        entry = engine.break_fault(fctx, fault, [], hidden=True, opts=opts)
    else:
        assert fault is not None
        entry = engine.break_fault(fctx, fault, list(ctx.args), hidden=hidden)
    seconds = round(time.monotonic() - started, 2)
    if hidden:
        if json_out:
            ui.print_json({"hidden": True, "seconds": seconds})
            return
        ui.success(
            f"a hidden fault is in effect (verified, {seconds:.1f}s); nothing names it until `labctl reveal`"
        )
        ui.info(
            "the student's part: `labctl check`, the evidence, then `labctl diagnose`; "
            "`labctl reveal` grades the diagnosis and heals"
        )
        return
    if json_out:
        ui.print_json({"fault": fault, "seconds": seconds, **entry.public()})
        return
    # By default only what was done, in neutral terms: finding the cause is the student's exercise.
    ui.success(f"{fault}: {entry.summary()}; the fault is in effect (verified, {seconds:.1f}s)")
    if explain:
        opts_text = " ".join(f"--{k} {v}" for k, v in entry.options.items())
        ui.note(f"options: {opts_text or '(none)'}")
        for line in entry.evidence:
            ui.item("·", line, 0)
    else:
        ui.note(
            "(details: `labctl break ... --explain` or `labctl faults --json` — they give the answer away)"
        )
    ui.info(f"next: `labctl check` to find the broken layer; `labctl heal {fault}` to undo it")


@cli.command(help="Undo a fault (or all of them) and restore the lab exactly as it was.")
def heal(
    fault: Annotated[str | None, typer.Argument(help="The fault to heal (default: all active).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Heal every active fault.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    fctx = engine.context()
    if fault and all_:
        raise LabError(
            "give a fault name or --all, not both", "e.g. `labctl heal network` or `labctl heal --all`"
        )
    secret = set(fctx.lab.hidden_faults())
    if fault and secret and (fault in secret or fault not in fctx.lab.faults):
        engine.get_fault(fault)
        # Neither yes nor no: a name guessed at `heal` must not confirm (or rule out) the hidden fault.
        raise LabError(
            "a hidden fault is active: healing by name does not apply to it",
            "`labctl reveal` grades your diagnosis and heals it; `labctl heal --all` heals without grading",
        )
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
    shown = {("a hidden fault" if name in secret else name): seconds for name, seconds in healed.items()}
    if json_out:
        ui.print_json(
            {
                "healed": {n: s for n, s in healed.items() if n not in secret},
                "healed_hidden": len(secret & set(healed)),
                "usable": not pending,
                "pending": pending,
                "last_scrape_failed": scrapes_down,
            }
        )
        return
    if not healed:
        ui.info("no active faults: nothing to heal")
    from labctl.faults.healed import changed_back

    for name, seconds in shown.items():
        if name == "a hidden fault":  # blind mode: what changed back would name the fault
            ui.success(f"healed {name} ({seconds:.1f}s) — not graded (`labctl reveal` grades)")
        else:
            ui.success(f"healed {name} ({seconds:.1f}s): {changed_back(name)}")
    for line in pending:
        ui.warn(f"{line} — `labctl check` may still fail until it recovers")
    if scrapes_down:
        ui.info(
            f"Prometheus' last scrape of {', '.join(scrapes_down)} was before the heal; its next one "
            "(at most one scrape interval away) shows it up again, and `labctl check` waits for it"
        )
    if healed and not pending:
        ui.info("next: `labctl check` should be green")


@cli.command(help="List active faults (persisted in the lab's state), or with --all every fault there is.")
def faults(
    all_: Annotated[bool, typer.Option("--all", help="List every available fault and its options.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    if all_:
        rows: list[dict[str, Any]] = [
            {
                "name": f.name,
                "layer": f.layer,
                "summary": f.summary,
                "options": {
                    o.name: {"choices": list(o.choices), "default": o.default, "help": o.help}
                    for o in f.options
                },
                "alert": f.alert({o.name: o.default for o in f.options}),
                "playbook": f.playbook,
            }
            for f in FAULTS.values()
        ]
        if json_out:
            ui.print_json(rows)
            return
        ui.table(
            ["fault", "layer", "what it does", "options"],
            [
                [
                    r["name"],
                    r["layer"],
                    r["summary"],
                    " ".join(
                        f"--{k} {'|'.join(v['choices']) or 'N'} (default {v['default']})"
                        for k, v in r["options"].items()
                    ),
                ]
                for r in rows
            ],
            title="available faults",
        )
        return
    lab = LabState.current()
    active = [a for a in engine.active_faults(lab) if not a.get("hidden")]
    secret = list(lab.hidden_faults().values())
    if json_out:
        ui.print_json(active + [{"hidden": True, "since": e.since} for e in secret])
        return
    for entry in secret:
        ui.info(
            f"a hidden fault is active since {time.strftime('%H:%M:%S', time.localtime(entry.since))}: "
            "find it with `labctl check`, record your answer with `labctl diagnose`"
        )
    if not active and secret:
        return
    if not active:
        ui.info("no active faults (`labctl faults --all` lists what `labctl break` can do)")
        return
    ui.table(
        ["fault", "options", "since", "layer", "evidence"],
        [
            [
                a["name"],
                " ".join(f"{k}={v}" for k, v in a["options"].items()),
                time.strftime("%H:%M:%S", time.localtime(a["since"])),
                a["layer"],
                "; ".join(a.get("evidence", [])),
            ]
            for a in active
        ],
        title="active faults",
    )
