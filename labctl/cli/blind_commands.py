"""Blind challenges: `labctl diagnose`, `labctl reveal`, and `labctl class ...` across every instance."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from labctl import invocation, ui
from labctl.errors import LabError
from labctl.faults import blind, engine
from labctl.state import LabState

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)

class_app = typer.Typer(
    help="A whole class at once: every instance's blind challenge in one table; "
    "inject into or grade every instance.",
    no_args_is_help=True,
)
cli.add_typer(class_app, name="class")


@cli.command(
    help="Record your diagnosis of the lab's hidden fault; `labctl reveal` grades it.\n\nCause classes: "
    + "; ".join(f"{k} ({v})" for k, v in blind.CAUSES.items())
    + ".",
    short_help="Record your diagnosis of the lab's hidden fault; `labctl reveal` grades it.",
)
def diagnose(
    layer: Annotated[int, typer.Option("--layer", help="The layer where the fault is: 1-4.")],
    hop: Annotated[str, typer.Option("--hop", help=f"The hop it is on: {', '.join(blind.hops())}.")],
    cause: Annotated[str, typer.Option("--cause", help=f"The cause class: {', '.join(blind.CAUSES)}.")],
    evidence: Annotated[str, typer.Option("--evidence", help="What you saw that shows it (your words).")],
    fix: Annotated[str, typer.Option("--fix", help="What would fix it (your words).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the recorded diagnosis as JSON.")] = False,
) -> None:
    lab = LabState.current()
    diagnosis = blind.Diagnosis.make(layer, hop, cause, evidence, fix)
    blind.record(lab, diagnosis)
    if json_out:
        ui.print_json(lab.settings["diagnosis"])
        return
    ui.success(f"diagnosis recorded: layer {layer}, hop {hop}, cause {cause}")
    if not blind.hidden(lab):
        ui.warn("no hidden fault is active in this lab: there is nothing to grade it against yet")
    else:
        ui.info("change it by running `labctl diagnose` again; `labctl reveal` grades it and heals the lab")


def _print_graded(graded: list[dict[str, Any]], who: str = "") -> None:
    for g in graded:
        opts = " ".join(f"--{k} {v}" for k, v in g["options"].items())
        verdict = (
            # Plain words: ui.table escapes its title, so markup here would be printed as text.
            "right" if g["correct"] else "wrong" if g["diagnosed"] else "no diagnosis"
        )
        ui.table(
            ["", "your diagnosis", "the answer", "points"],
            [
                [
                    r["field"],
                    r["yours"] if r["yours"] is not None else "-",
                    r["answer"],
                    f"{r['points']}/{r['of']}",
                ]
                for r in g["rows"]
            ],
            title=f"{who}the fault was `{g['fault']}{' ' + opts if opts else ''}` — {verdict}, "
            f"{g['score']}/{g['of']} points",
        )
        ui.info(f"what it did: {g['explanation']}")
        # Labelled lines wrap under their own text, never back to column 0.
        for line in g["pointers"]:
            _labelled("evidence that points to it:", line)
        if g.get("diagnosis"):
            _labelled("your evidence:", g["diagnosis"]["evidence"])
            _labelled("your fix:", g["diagnosis"]["fix"])
        ui.success(f"healed ({g['healed_in_s']:.1f}s)")


def _labelled(label: str, text: str) -> None:
    ui.item(label, text, len(label) - 1)


@cli.command(
    help="Grade the recorded diagnosis against the hidden fault, explain the fault and the evidence "
    "that pointed to it, and heal it."
)
def reveal(
    json_out: Annotated[bool, typer.Option("--json", help="Print the grading as JSON.")] = False,
) -> None:
    fctx = engine.context()
    graded = blind.reveal(fctx)
    pending, _ = engine.await_usable(fctx)
    if json_out:
        ui.print_json({"graded": graded, "usable": not pending, "pending": pending})
        return
    _print_graded(graded)
    for line in pending:
        ui.warn(f"{line} — `labctl check` may still fail until it recovers")


# --- the class ---------------------------------------------------------------------------------------


RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="The folder holding one state directory per instance (default: where `--instance` keeps "
        "them, $XDG_STATE_HOME/labctl or ~/.local/state/labctl).",
    ),
]


def _root(root: Path | None) -> Path:
    if root is not None:
        return root.expanduser().resolve()
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "labctl"


def _instances(root: Path) -> list[LabState]:
    labs = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if LabState.exists(sub):
            try:
                labs.append(LabState.load(sub))
            except LabError as exc:
                ui.warn(f"{sub.name}: {exc.message}")
    if not labs:
        raise LabError(
            f"no lab instances under {root}",
            "start them with `labctl --instance NAME up ...`, "
            "or pass --root (the folder that holds their state directories)",
        )
    return labs


def _health(lab: LabState) -> dict[str, Any]:
    """Now, cheaply: is every service of the lab's stage running and answering its health endpoint?
    (`labctl status` without the table; a service the machine cannot run, such as Grafana, is left out.)"""
    if not lab.stage:
        return {"green": False, "summary": "down", "unhealthy": []}
    from labctl.runtimes import get_runtime

    try:
        rows = [
            r
            for r in get_runtime(lab).status()
            if r.state != "not available" and not r.detail.startswith("not part")
        ]
    except LabError as exc:
        return {"green": False, "summary": f"unknown: {exc.message}", "unhealthy": []}
    bad = [r.service for r in rows if r.health != "healthy"]
    summary = "green" if not bad else f"{len(rows) - len(bad)}/{len(rows)} healthy; not: {', '.join(bad)}"
    return {"green": not bad, "summary": summary, "unhealthy": bad}


def _rows(labs: list[LabState]) -> list[dict[str, Any]]:
    """Every instance's row; the health probes run side by side (a class is 20 to 50 labs)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        health = list(pool.map(_health, labs))
    return [{**_row(lab), "health": h} for lab, h in zip(labs, health, strict=True)]


def _row(lab: LabState) -> dict[str, Any]:
    from labctl.exercises.progress import passed

    secret = blind.hidden(lab)
    since = min((e.since for e in secret.values()), default=None)
    diagnosis = lab.settings.get("diagnosis")
    last = (lab.settings.get("graded") or [None])[-1]
    return {
        "instance": lab.dir.name,
        "stage": lab.stage,
        "runtime": lab.runtime,
        "hidden_fault": bool(secret),
        "since": time.strftime("%H:%M:%S", time.localtime(since)) if since else None,
        "diagnosed": bool(diagnosis),
        "diagnosis": (
            f"layer {diagnosis['layer']}, {diagnosis['hop']}, {diagnosis['cause']}" if diagnosis else None
        ),
        "last_grade": (
            f"{last['fault']}: {last['score']}/{last['of']}" + (" right" if last["correct"] else " wrong")
        )
        if last
        else None,
        "exercises_passed": passed(lab),
    }


@class_app.command(
    "show",
    help="One row per instance: stage, whether its services are healthy now, hidden fault active since, "
    "diagnosis, last grade, build-it exercises passed.",
)
def class_show(
    root: RootOpt = None, json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    rows = _rows(_instances(_root(root)))
    if json_out:
        ui.print_json(rows)
        return
    ui.table(
        ["instance", "stage", "now", "hidden fault", "diagnosis", "last grade", "exercises passed"],
        [
            [
                r["instance"],
                r["stage"] or "down",
                r["health"]["summary"],
                f"since {r['since']}" if r["hidden_fault"] else "-",
                r["diagnosis"] or "-",
                r["last_grade"] or "-",
                ", ".join(r["exercises_passed"]) or "-",
            ]
            for r in rows
        ],
        title=f"the class ({len(rows)} instances under {_root(root)})",
    )


def _each(root: Path | None, what: str, action: Any) -> list[dict[str, Any]]:
    """Run `action(ctx)` on every running instance; one failing instance does not stop the others."""
    out = []
    for lab in _instances(_root(root)):
        if not lab.stage:
            out.append({"instance": lab.dir.name, "error": "not running"})
            continue
        invocation.update(state_dir=lab.dir, instance=None)  # this instance's lab, the same --json
        try:
            out.append({"instance": lab.dir.name, **action(engine.context(lab))})
        except LabError as exc:
            out.append({"instance": lab.dir.name, "error": exc.message})
            ui.warn(f"{lab.dir.name}: {what} failed: {exc.message}")
    return out


@class_app.command(
    "break",
    help="Inject a hidden fault into every running instance, drawn at random per "
    "instance (seed + its position in the table: reproducible, not all alike).",
)
def class_break(
    root: RootOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Base seed.")] = 0,
    pool: Annotated[str | None, typer.Option("--pool", help="Comma-separated fault names.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    names = [n.strip() for n in pool.split(",") if n.strip()] if pool else None
    position = iter(range(1_000_000))

    def inject(ctx: engine.FaultContext) -> dict[str, Any]:
        grafana_up = "grafana" in ctx.running and ctx.runtime.is_running("grafana")
        name, opts = blind.draw(ctx.running, ctx.lab.runtime, grafana_up, seed + next(position), names)
        entry = engine.break_fault(ctx, name, [], hidden=True, opts=opts)
        return {"hidden": True, "seconds": entry.seconds}

    done = _each(root, "break", inject)
    if json_out:
        ui.print_json(done)
        return
    ok = [d for d in done if "error" not in d]
    ui.success(f"a hidden fault is in effect in {len(ok)} of {len(done)} instances (nothing names them)")


@class_app.command("reveal", help="Grade every instance's diagnosis, explain and heal its hidden fault.")
def class_reveal(
    root: RootOpt = None, json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    done = _each(root, "reveal", lambda ctx: {"graded": blind.reveal(ctx)})
    if json_out:
        ui.print_json(done)
        return
    rows = [
        [
            d["instance"],
            g["fault"],
            "right" if g["correct"] else ("wrong" if g["diagnosed"] else "none"),
            f"{g['score']}/{g['of']}",
        ]
        for d in done
        for g in d.get("graded", [])
    ]
    rows += [[d["instance"], "-", d["error"], "-"] for d in done if "error" in d]
    ui.table(["instance", "fault", "diagnosis", "points"], rows, title="graded and healed")
