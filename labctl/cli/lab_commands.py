"""Lab lifecycle commands: up, down, status, logs, doctor, install. Thin: load state, call the runtime, print."""

from __future__ import annotations

from typing import Annotated

import typer

from labctl import state, ui
from labctl.errors import LabError
from labctl.model import BIND_ADDRESSES, SHARED_ON_BIND, LabModel, Stage, load_model, read_env_file
from labctl.runtimes.base import Runtime, ServiceStatus, choose_runtime, get_runtime
from labctl.runtimes.native import NativeRuntime
from labctl.state import LabState, allocate_ports, lifecycle_lock

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)

# What to try once a stage is up (the next exercise step).
_NEXT = {
    1: "`labctl emit --from-lab --sessions 1` sends Claude Code-like telemetry; watch it arrive on the proxy page",
    2: "`labctl emit --from-lab --sessions 1`, then `labctl logs collector` shows the events in the logs pipeline",
    3: "`labctl emit --from-lab --sessions 1`, then query claude_code_token_usage_tokens_total in Prometheus",
    4: "`labctl emit --from-lab --sessions 1`, then open the Claude Code usage dashboard in Grafana",
}
# Native module-4 without a Grafana binary: the dashboards' queries can still be proven against Prometheus.
_NEXT_WITHOUT_GRAFANA = (
    "`labctl emit --from-lab --sessions 1`, then `labctl check --layer 4` runs every dashboard panel's query "
    "against Prometheus (Grafana is not running here)"
)


def _prepare_lab(model: LabModel, port_offset: int, free_ports: bool) -> LabState:
    """The lab of this state dir: existing (ports kept) or new (runtime chosen, ports allocated)."""
    directory = state.state_dir()
    requested = state.requested_runtime()
    if LabState.exists(directory):
        lab = LabState.load(directory)
        current = get_runtime(lab, model)
        running = any(
            current.is_running(s) for s in model.services if current.name in model.service(s).runtimes
        )
        if requested not in ("auto", lab.runtime) and running:
            raise LabError(
                f"this lab is already running with the {lab.runtime} runtime",
                f"run `labctl down` first to switch to {requested}",
            )
        if port_offset or free_ports:
            if running:
                raise LabError(
                    "the lab is running on its ports already; --port-offset/--free-ports only apply to a new lab",
                    "run `labctl down` first to change ports",
                )
            lab.ports = allocate_ports(model.default_ports(), port_offset, free_ports)
        missing = {s: p for s, p in model.default_ports().items() if s not in lab.ports}
        if missing:
            # Services lab.yaml gained since this lab was first started: free ports, never a clash.
            lab.ports.update(allocate_ports(missing, free=True))
        if not running and requested != lab.runtime:
            lab.runtime = choose_runtime(requested)
        return lab
    lab = LabState(
        dir=directory,
        runtime=choose_runtime(requested),
        instance=state.instance_name(),
        ports=allocate_ports(model.default_ports(), port_offset, free_ports),
    )
    if lab.runtime == "docker":
        from labctl.runtimes.docker import resume_stopped

        resume_stopped(lab, free_ports)  # a lab `down` stopped: its containers start again as they were
    return lab


@cli.command()
def up(
    module: Annotated[str, typer.Argument(help="The stage to run: module-1 .. module-4.")],
    port_offset: Annotated[int, typer.Option("--port-offset", help="Add N to every host port.")] = 0,
    free_ports: Annotated[
        bool, typer.Option("--free-ports", help="Pick free ports for every service (tests, shared machines).")
    ] = False,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime", help="docker, native or auto; same as the global option (either place works)."
        ),
    ] = None,
    install: Annotated[
        bool, typer.Option("--install", help="Native: build/install missing binaries first (labctl install).")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the resulting status as JSON.")] = False,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Clients must send a bearer token to the proxy (`labctl env` prints it); kept until --no-auth.",
        ),
    ] = None,
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind",
            help="Where the proxy, model stub, Prometheus and Grafana listen: 127.0.0.1 (default) or "
            "0.0.0.0 (every interface, e.g. a classroom server; use with --auth). Kept until changed.",
        ),
    ] = None,
) -> None:
    """Start a stage. Additive and idempotent: only missing layers start; layers above it stop."""
    ui.json_mode(json_out)
    if runtime is not None:
        state.override_runtime(runtime)
    model = load_model()
    stage = model.stage(module)  # unknown module: error before anything is touched
    if bind is not None and bind not in BIND_ADDRESSES:
        raise LabError(
            f"--bind {bind!r} is not supported",
            "127.0.0.1 (this machine only) or 0.0.0.0 (every interface); labctl itself reaches the "
            "services on 127.0.0.1, so a single other address would cut it off",
        )
    with lifecycle_lock(state.state_dir()):
        _up(model, stage, port_offset, free_ports, install, json_out, auth, bind)


def _can_run(model: LabModel, runtime: Runtime, service: str) -> bool:
    """False for an optional service without its binary (native) or its image (Docker; `up` still tries
    to pull it): Grafana here. `up` says so once."""
    svc = model.service(service)
    if not svc.optional:
        return True
    if runtime.name == "docker":
        from labctl.runtimes import docker_images
        from labctl.runtimes.docker import DockerRuntime

        assert isinstance(runtime, DockerRuntime)
        ref = runtime.images().get(service)
        return bool(ref and docker_images.image_id(ref, runtime.client_call))
    if runtime.name != "native" or not svc.native.binary:
        return True
    from labctl.install import resolve_binary

    try:
        resolve_binary(svc.native.binary)
    except LabError:
        return False
    return True


def _say_plan(model: LabModel, lab: LabState, runtime: Runtime, stage: Stage) -> None:
    """What `up` will start (with its host ports), keep and stop, before it does it."""
    wanted = [s for s in model.stage_services(stage.name, runtime.name) if _can_run(model, runtime, s)]
    running = [s for s in model.ordered(list(model.services)) if runtime.is_running(s)]

    def with_ports(service: str) -> str:
        ports = sorted(lab.ports.get(service, {}).values())
        return f"{service} ({', '.join(str(p) for p in ports)})" if ports else service

    plan = [
        ("starts:", ", ".join(with_ports(s) for s in wanted if s not in running)),
        ("keeps:", ", ".join(s for s in wanted if s in running)),
        ("stops:", ", ".join(s for s in running if s not in wanted)),
    ]
    for label, names in plan:
        if names:
            ui.item(label, names, label_width=9)


def _up(
    model: LabModel,
    stage: Stage,
    port_offset: int,
    free_ports: bool,
    install: bool,
    json_out: bool,
    auth: bool | None,
    bind: str | None = None,
) -> None:
    lab = _prepare_lab(model, port_offset, free_ports)
    runtime = get_runtime(lab, model)
    runtime.preflight()  # nothing is recorded for a runtime that cannot start
    if auth is True:
        lab.ensure_secret("auth_token")  # the proxy's env changes with it, so the runtime restarts the proxy
        lab.settings["auth_enabled"] = True
    elif auth is False:
        lab.settings.pop("auth_token", None)
        lab.settings.pop("auth_enabled", None)
    if bind == "127.0.0.1":
        lab.settings.pop("bind", None)
    elif bind is not None:
        lab.settings["bind"] = bind  # the listen addresses change with it: those services restart
    lab.save()
    if lab.settings.get("bind"):
        ui.warn(
            f"--bind {lab.settings['bind']}: {', '.join(SHARED_ON_BIND)} are reachable from other machines "
            "on this network; Prometheus and the model stub ask for no credentials"
            + ("" if lab.settings.get("auth_enabled") else "; the proxy takes anyone's data: add --auth")
        )
    if install and isinstance(runtime, NativeRuntime):
        runtime.auto_install = True
    ui.info(f"starting [bold]{stage.name}[/] ({stage.adds}) with the {lab.runtime} runtime")
    _say_plan(model, lab, runtime, stage)
    runtime.up(stage.name)
    rows = _note_edited_configs(lab, model, runtime.status())
    if json_out:
        ui.print_json(_status_doc(lab, rows))
        return
    ui.table(
        ["service", "layer", "state", "health", "url"],
        [[r.service, r.layer, r.state, r.health, r.url if r.state == "running" else r.detail] for r in rows],
    )
    ok = [r for r in rows if r.health == "healthy"]
    grafana_missing = any(r.service == "grafana" and r.state != "running" for r in rows)
    if grafana_missing and len(ok) == len(rows) - 1:
        # Expected on a machine without a Grafana binary (or image): one calm line, not "6 of 7 healthy".
        missing = "Grafana is not installed here"
        if lab.runtime == "docker":
            ref = (lab.settings.get("images") or {}).get("grafana", "")  # the images `up` chose
            missing = f"Grafana's image is not here (`docker pull {ref}` or `labctl images load FILE`)"
        ui.success(
            f"{stage.name} is up: all {len(ok)} services healthy; {missing}, so "
            f"layer 4 is checked against Prometheus (state dir: {lab.dir})"
        )
    else:
        ui.success(f"{stage.name} is up: {len(ok)} of {len(rows)} services healthy (state dir: {lab.dir})")
    next_step = _NEXT_WITHOUT_GRAFANA if grafana_missing else _NEXT.get(stage.layer, "`labctl status`")
    if lab.settings.get("auth_enabled"):
        ui.info(
            "auth is on: clients must send the lab's bearer token — `labctl env` prints it in the block; "
            "`labctl url proxy` prints the inspector page's address with it"
        )
    for r in rows:
        if r.config_edited:
            ui.warn(
                f"{r.service} runs an older version of {', '.join(r.config_edited)}: "
                f"`labctl reload {r.service}` applies the edit without a restart"
            )
    ui.info(f"next: {next_step}")
    later = [s for s in model.stages.values() if s.layer == stage.layer + 1]
    if later:
        ui.info(f"then: `labctl up {later[0].name}` adds {later[0].adds}")


@cli.command()
def down(
    volumes: Annotated[
        bool,
        typer.Option(
            "--volumes",
            help="Also delete the services' data and logs (Docker: containers, networks, volumes).",
        ),
    ] = False,
) -> None:
    """Stop every service of the lab (SIGTERM, then SIGKILL after a timeout). Nothing runs afterwards and
    its ports are free. Docker keeps the stopped containers and networks, so the next `up` only starts
    them (it recreates what changed); `--volumes` removes them with the data."""
    from labctl.runtimes.docker_images import docker_project_left

    directory = state.state_dir()
    if LabState.exists(directory):
        lab = LabState.load(directory, salvage=True)  # also a lab of another labctl: down is the fix
    elif (directory / "compose.env").is_file():
        # A docker lab already stopped (`down`, then `down --volumes`): its project still has volumes.
        instance = read_env_file(directory / "compose.env").get("LAB_INSTANCE") or state.instance_name()
        lab = LabState(dir=directory, runtime="docker", instance=instance)
    elif (directory / "services").is_dir():
        lab = LabState(dir=directory, runtime="native")  # leftovers of an interrupted `up`: stop them too
    elif docker_project_left(state.instance_name()):
        # The state dir was deleted after `down`: the instance's stopped containers are still in Docker.
        lab = LabState(dir=directory, runtime="docker", instance=state.instance_name())
    else:
        ui.info(f"nothing to stop: no lab in {directory}")
        return
    # Active faults must not outlive the lab: relays stop, fault overrides leave lab.json.
    from labctl.faults.engine import forget_faults

    if forgotten := forget_faults(lab):
        ui.info(f"dropped active faults: {', '.join(forgotten)}")
    runtime = get_runtime(lab)
    fresh = bool(forgotten) or lab.salvaged  # what faults changed in place must not be kept
    with lifecycle_lock(directory):
        runtime.down(volumes=volumes, fresh=fresh)
    if volumes:
        ui.success("lab stopped and its data deleted")
    elif runtime.name == "docker" and not fresh:
        ui.success("lab stopped; containers kept for a quick `up` (--volumes removes them)")
    else:
        ui.success("lab stopped (data kept; --volumes deletes it)")


def _note_edited_configs(lab: LabState, model: LabModel, rows: list[ServiceStatus]) -> list[ServiceStatus]:
    """Running services whose configuration files were edited since they (re)loaded them."""
    from labctl.ops.config_files import describe, edited_since_applied

    for r in rows:
        if r.state in ("running", "frozen") and (edited := edited_since_applied(lab, model, r.service)):
            r.config_edited = edited
            r.detail = "; ".join(
                filter(None, [r.detail, f"older {describe(edited)}: `labctl reload {r.service}`"])
            )
    return rows


def _status_doc(lab: LabState, rows: list[ServiceStatus]) -> dict[str, object]:
    return {
        "running": bool(lab.stage),
        "stage": lab.stage,
        "runtime": lab.runtime,
        "state_dir": str(lab.dir),
        "services": [r.as_dict() for r in rows],
    }


@cli.command()
def status(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Each service of the running stage: layer, state, health and URL."""
    directory = state.state_dir()
    if not LabState.exists(directory):
        if json_out:
            ui.print_json({"running": False, "stage": None, "runtime": None, "services": []})
        else:
            ui.info("no lab is running. Start one with `labctl up module-1`.")
        return
    lab = LabState.load(directory)
    rows = _note_edited_configs(lab, load_model(), get_runtime(lab).status())
    if json_out:
        ui.print_json(_status_doc(lab, rows))
        return
    ui.table(
        ["service", "layer", "state", "health", "url", "detail"],
        [[r.service, r.layer, r.state, r.health, r.url, r.detail] for r in rows],
        title=f"{lab.stage} ({lab.runtime} runtime, state dir {lab.dir})",
    )
    for r in rows:
        if r.state == "not available":
            ui.warn(f"{r.service} is not available on this machine: {r.detail}")
        if r.config_edited:
            ui.warn(
                f"{r.service} runs an older version of {', '.join(r.config_edited)}: "
                f"`labctl reload {r.service}` applies the edit"
            )


@cli.command()
def ports(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every port of the running lab: service, port name, URL and what it is for."""
    lab = LabState.current()
    assert lab.stage is not None  # current() refuses a lab without a stage
    model = load_model()
    rows = [
        {"service": svc, "port": name, "url": lab.url(svc, name), "what": model.service(svc).ports[name].what}
        for svc in model.stage_services(lab.stage, lab.runtime)
        for name in model.service(svc).ports
    ]
    if json_out:
        ui.print_json(rows)
        return
    ui.table(["service", "port", "url", "what"], [list(r.values()) for r in rows], title=f"{lab.stage} ports")
    # The example on a line of its own: wrapped inside a sentence, the command would split in two.
    ui.info("in scripts, `labctl url SERVICE.PORT` prints one of them:")
    ui.command("curl $(labctl url proxy.admin)/api/stats")


@cli.command()
def url(
    target: Annotated[
        str, typer.Argument(help="SERVICE or SERVICE.PORT, e.g. proxy.admin or collector.health.")
    ],
) -> None:
    """Print one URL of the running lab (the service's main page, or one named port) for use in scripts."""
    lab = LabState.current()
    assert lab.stage is not None  # current() refuses a lab without a stage
    model = load_model()
    service, _, port_name = target.partition(".")
    spec = model.service(service)
    if service not in model.stage_services(lab.stage, lab.runtime):
        raise LabError(f"{service} is not part of {lab.stage}", "`labctl ports` lists what this stage runs")
    if not port_name:
        page = lab.url(service, spec.url.port) + spec.url.path
        # With auth on, the proxy's page needs the token once (it becomes a cookie, see labctl/proxy/guard.py).
        token = lab.admin_headers().get("Authorization", "").removeprefix("Bearer ")
        print(f"{page}?token={token}" if service == "proxy" and token else page)
        return
    if port_name not in spec.ports:
        raise LabError(
            f"{service} has no port {port_name!r}",
            f"{service}'s ports: {', '.join(spec.ports)} (`labctl ports`)",
        )
    print(lab.url(service, port_name))


@cli.command()
def logs(
    service: Annotated[
        str,
        typer.Argument(
            help="proxy, collector, prometheus, grafana, (native) otlp-relay, scrape-relay, query-relay, or "
            "proxy-build (docker: the proxy image's build log)."
        ),
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many recent lines to show.")] = 200,
) -> None:
    """Print a service's log."""
    lab = LabState.load()
    get_runtime(lab).logs(service, follow=follow, lines=lines)


@cli.command()
def doctor(
    runtime: Annotated[
        str | None,
        typer.Option("--runtime", help="Check for docker or native (default: the lab's runtime, else auto)."),
    ] = None,
    port_offset: Annotated[
        int, typer.Option("--port-offset", help="Check the ports `up --port-offset N` would use.")
    ] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Preflight for the chosen runtime: engine, compose and images, or binaries; ports, disk, memory."""
    from labctl.doctor import print_findings, run_checks

    results = run_checks(load_model(), runtime, port_offset)
    if json_out:
        ui.print_json([r.as_dict() for r in results])
    else:
        print_findings(results)
    if any(r.level == "fail" for r in results):
        raise typer.Exit(1)


@cli.command()
def install(
    components: Annotated[
        list[str] | None,
        typer.Argument(
            help="collector, prometheus, alertmanager, victorialogs, jaeger, grpc-front, grafana, all or "
            "claude-code; "
            "several at once in one run (default: all)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when the cached binary is current.")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="auto (Go build when go is on PATH, else the official archive), go or archive "
            "(default: LABCTL_INSTALL_FROM or auto).",
        ),
    ] = None,
) -> None:
    """Build or install the binaries the native runtime needs, into the lab's cache.

    `claude-code` installs the pinned real Claude Code (npm) for `labctl claude`; never part of `all`."""
    from labctl.install.components import install_many

    with ui.progress() as prog:
        task = prog.add_task("installing", total=None)
        results = install_many(
            components or ["all"],
            force=force,
            source=source,
            progress=lambda m: prog.update(task, description=m),
        )
    for result in results:
        if result.get("error"):
            ui.warn(
                f"{result['component']}: {result['error']}"
                + (f" — {result['hint']}" if result.get("hint") else "")
            )
        elif result.get("built"):
            verb = {
                "archive": f"installed {result.get('version')} from the official archive:",
                "npm": f"installed {result.get('version')} from the npm registry:",
            }.get(str(result.get("source")), "built")
            ui.success(f"{result['component']}: {verb} {result['binary']} ({result.get('seconds', 0):.0f}s)")
        else:
            ui.success(f"{result['component']}: {result['binary']} is up to date")
        if result.get("note") and result.get("source") in ("archive", "npm"):
            ui.note(str(result["note"]))
