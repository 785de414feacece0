"""Operating a running lab: `labctl reload` (edited configuration, no restart), `backup` and `restore`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from labctl import ui
from labctl.errors import LabError
from labctl.model import load_model
from labctl.ops.config_files import edited_since_applied
from labctl.ops.reload import RELOADABLE, Reloader
from labctl.runtimes.base import get_runtime
from labctl.state import LabState, lifecycle_lock

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)


@cli.command()
def reload(
    services: Annotated[
        list[str] | None,
        typer.Argument(
            help="proxy, collector, prometheus, grafana, alertmanager (default: those whose files were edited)."
        ),
    ] = None,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Proxy: also restart it when a changed setting cannot apply live."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Apply edited configuration files to the running lab without restarting it (validated first)."""
    ui.json_mode(json_out)
    lab = LabState.current()
    model = load_model()
    runtime = get_runtime(lab, model)
    # One look at the lab (one engine query with docker), not one per service.
    rows = {r.service: r for r in runtime.status()}
    running = [s for s in RELOADABLE if s in rows and rows[s].state == "running"]
    if services:
        for name in services:
            model.service(name)  # unknown name: the list of services
            if name not in RELOADABLE:
                raise LabError(
                    f"{name} has no configuration files to reload", f"reloadable: {', '.join(RELOADABLE)}"
                )
            if name not in running:
                row = rows.get(name)
                seen = f": {row.state}" + (f" ({row.detail})" if row.detail else "") if row else ""
                raise LabError(
                    f"{name} is not running in this lab ({lab.stage}){seen}",
                    "`labctl status` shows what runs; `labctl up <module>` starts it",
                )
        wanted = [s for s in RELOADABLE if s in services]
    else:
        wanted = [s for s in running if edited_since_applied(lab, model, s)]
        if not wanted:
            if json_out:
                ui.print_json([])
            else:
                ui.info(
                    "nothing to reload: no service's configuration files changed since it (re)loaded them "
                    "(`labctl reload SERVICE` reloads one anyway)"
                )
            return
    reloader = Reloader(runtime, set(running))
    with lifecycle_lock(lab.dir):
        for service in wanted:  # all validated before any is applied: one broken file changes nothing
            ui.info(f"validating {service}'s configuration")
            reloader.validate(service)
        results = []
        for service in wanted:
            results.append(reloader.apply(service, restart=restart))
    if json_out:
        ui.print_json([r.as_dict() for r in results])
        return
    ui.table(
        ["service", "how", "took", "what changed"],
        [
            [
                r.service,
                r.how,
                f"{r.seconds:.2f}s" + (f" (after {r.waited:.1f}s for a scrape)" if r.waited else ""),
                ", ".join(r.applied) or "-",
            ]
            for r in results
        ],
    )
    for r in results:
        if r.restart_needed and not r.restarted:
            ui.warn(
                f"{r.service}: {r.note}; `labctl reload {r.service} --restart` applies them "
                "(clients retry for about a second; the spool keeps unsent data)"
            )
        elif r.note:
            ui.info(f"{r.service}: {r.note}")
    ui.success(
        f"reloaded {', '.join(r.service for r in results)}; `labctl check` proves the pipeline end to end"
    )


@cli.command()
def backup(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="A new directory for the backup (default: backups/ beside the state dir)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Back up the running lab's data: Prometheus (TSDB snapshot), the proxy, Grafana, the lab's state."""
    from labctl.ops.backup import backup as take_backup

    ui.json_mode(json_out)
    lab = LabState.current()
    runtime = get_runtime(lab, load_model())
    started = time.monotonic()
    with ui.progress() as prog:
        prog.add_task("taking a Prometheus snapshot and copying the lab's data", total=None)
        manifest = take_backup(runtime, to)
    if json_out:
        ui.print_json({"directory": str(manifest.directory), **manifest.data})
        return
    files = manifest.data["files"]
    size = sum(int(f["bytes"]) for f in files.values())
    ui.table(["part", "what"], [[part, _part_text(part, info)] for part, info in manifest.parts.items()])
    ui.success(
        f"backup of {lab.stage} in {manifest.directory} ({len(files)} files, {size / 1e6:.1f} MB, "
        f"{time.monotonic() - started:.1f}s)"
    )
    ui.info("restore it with (also after `labctl down --volumes`):")
    ui.command(f"labctl restore {manifest.directory}")


def _part_text(part: str, info: dict[str, object]) -> str:
    if part == "prometheus":
        blocks = info.get("blocks") or []
        return f"TSDB snapshot {info.get('snapshot')} ({len(blocks)} blocks)"  # type: ignore[arg-type]
    if part == "proxy":
        return f"{info.get('sessions')} sessions, JSON Lines log" + (", spool" if info.get("spool") else "")
    if part == "grafana":
        return "grafana.db"
    return f"lab state ({info.get('stage')}, {info.get('runtime')} runtime)"


@cli.command()
def restore(
    directory: Annotated[Path, typer.Argument(help="A directory `labctl backup` wrote.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Restore a backup into this lab (checked first; the lab restarts with the backup's stage and data)."""
    from labctl import state
    from labctl.ops.backup import restore as do_restore
    from labctl.ops.backup import verify
    from labctl.runtimes.base import choose_runtime

    ui.json_mode(json_out)
    model = load_model()
    manifest = verify(directory, model)  # before anything is touched, also before choosing a runtime
    directory_state = state.state_dir()
    if LabState.exists(directory_state):
        runtime_name = LabState.load(directory_state).runtime
    else:
        requested = state.requested_runtime()
        runtime_name = choose_runtime(
            manifest.data.get("runtime", "auto") if requested == "auto" else requested
        )
    with lifecycle_lock(directory_state):
        result = do_restore(manifest, model, directory_state, runtime_name)
    if json_out:
        ui.print_json(
            {
                "directory": str(result.directory),
                "stage": result.stage,
                "runtime": result.runtime,
                "parts": result.parts,
                "seconds": result.seconds,
                "start_seconds": result.start_seconds,
            }
        )
        return
    ui.success(
        f"restored {', '.join(result.parts) or 'the lab state'} from {result.directory} and started "
        f"{result.stage} ({result.runtime} runtime, {result.seconds:.1f}s, of which starting the lab "
        f"{result.start_seconds:.1f}s)"
    )
    ui.info("`labctl check` proves the pipeline; the restored series answer the queries they answered before")
