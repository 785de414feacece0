"""`labctl images`: the Docker images a lab needs — list, pull, save and load them before class, and
prepare the proxy image (its wheelhouse, its build) so a classroom without network can run the lab.

Before class, on a machine with network:
    labctl images pull && labctl images build && labctl images save lab-images.tar
In class, on each laptop (no network needed):
    labctl images load lab-images.tar && labctl images
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labctl import ui
from labctl.errors import LabError

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)

images_app = typer.Typer(
    help="The Docker images the lab needs: list, pull, build, save and load them (offline classrooms).",
    invoke_without_command=True,
)
cli.add_typer(images_app, name="images")


def _refs() -> tuple[dict[str, str], str | None]:
    """(role -> image, the proxy image tag when its base image is here)."""
    from labctl.model import load_model
    from labctl.runtimes import docker_images
    from labctl.state import LabState

    model = load_model()
    recorded = LabState.load().settings.get("images") if LabState.exists() else None
    images = docker_images.chosen_images(model, recorded)
    python_id = docker_images.image_id(images["python"])
    proxy = docker_images.proxy_tag(model, images["python"], python_id) if python_id else None
    return images, proxy


def _engine() -> None:
    from labctl.runtimes.base import docker_engine

    ok, why = docker_engine()
    if not ok:
        raise LabError(
            f"`labctl images` works on a Docker engine, but {why}", "start Docker, then run it again"
        )


@images_app.callback()
def show(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each image the lab needs, whether it is on this machine, and where its name comes from."""
    if ctx.invoked_subcommand:
        return
    from labctl.runtimes import docker_images

    _engine()
    images, proxy = _refs()
    rows = [
        docker_images.Image(role, ref, docker_images.image_id(ref) is not None)
        for role, ref in images.items()
    ]
    rows.append(
        docker_images.Image(
            "proxy", proxy or "(built from the python image)", bool(proxy and docker_images.image_id(proxy))
        )
    )
    if json_out:
        ui.print_json([r.as_dict() for r in rows])
        return
    ui.table(
        ["role", "image", "here"], [[r.role, r.ref, "yes" if r.present else "[yellow]no[/]"] for r in rows]
    )
    ui.info(
        "pins: compose/versions.env; override one with LAB_COLLECTOR_IMAGE, LAB_PROMETHEUS_IMAGE, "
        "LAB_GRAFANA_IMAGE or LAB_PYTHON_IMAGE when you run `labctl up`"
    )
    if not all(r.present for r in rows):
        ui.info(
            "missing ones: `labctl images pull` (network), `labctl images build` (the proxy), or "
            "`labctl images load FILE` (the instructor's archive)"
        )


@images_app.command()
def pull() -> None:
    """Pull every image the lab needs that is not here yet (needs a registry)."""
    from labctl.runtimes import docker_images

    _engine()
    images, _ = _refs()
    failed = []
    for role, ref in images.items():
        if docker_images.image_id(ref):
            ui.success(f"{role}: {ref} is here")
            continue
        ui.info(f"pulling {ref} ({role})")
        reason = docker_images.pull(ref)
        if reason:
            failed.append(ref)
            ui.warn(f"{role}: cannot pull {ref}: {reason}")
        else:
            ui.success(f"{role}: pulled {ref}")
    if failed:
        raise LabError(
            f"{len(failed)} image(s) could not be pulled: {', '.join(failed)}",
            "pull on a machine with network and bring them here with `labctl images save`/`load`",
        )


@images_app.command()
def wheelhouse() -> None:
    """Download the proxy's Python dependencies into compose/wheelhouse/ (its image then builds offline)."""
    from labctl.model import load_model
    from labctl.runtimes import docker_images

    _engine()
    images, _ = _refs()
    model = load_model()
    where = docker_images.make_wheelhouse(model, images["python"])
    ui.success(f"wheelhouse ready: {where} ({len(list(where.glob('*.whl')))} wheels)")


@images_app.command()
def build() -> None:
    """Build the proxy image for this code (skipped when it is current; offline from the wheelhouse)."""
    from labctl.model import load_model
    from labctl.runtimes import docker_images
    from labctl.state import state_dir

    _engine()
    images, _ = _refs()
    log = state_dir() / "logs" / "proxy-build.log"
    tag = docker_images.ensure_proxy_image(load_model(), images["python"], log, progress=ui.info)
    ui.success(f"proxy image {tag} is built")


@images_app.command()
def save(
    file: Annotated[Path, typer.Argument(help="The archive to write, e.g. lab-images.tar.")],
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="Save the images that are here and name the missing ones (a class that stops before "
            "module 4 needs no Grafana image).",
        ),
    ] = False,
) -> None:
    """Write every image the lab needs (and the proxy image) into one archive for `labctl images load`."""
    from labctl.runtimes import docker_images

    _engine()
    images, proxy = _refs()
    refs = [*images.values(), *([proxy] if proxy else [])]
    missing = [r for r in refs if not docker_images.image_id(r)]
    if missing and not partial:
        raise LabError(
            f"not on this machine: {', '.join(missing)}",
            "`labctl images pull` and `labctl images build` first, or `--partial` to save the others",
        )
    for ref in missing:
        ui.warn(f"not saved (not on this machine): {ref}")
    refs = [r for r in refs if r not in missing]
    if not refs:
        raise LabError("none of the lab's images is on this machine", "`labctl images pull` first")
    ui.info(f"saving {len(refs)} images into {file}")
    out = docker_images.docker(["save", "--output", str(file), *refs], timeout=1800)
    if out.returncode != 0:
        raise LabError(f"docker save failed: {out.stderr.strip()}", "is there room on the disk?")
    ui.success(
        f"{file}: {file.stat().st_size / 2**20:.0f} MB, {len(refs)} images — on each machine: "
        f"`labctl images load {file.name}`"
    )


@images_app.command()
def load(file: Annotated[Path, typer.Argument(help="An archive from `labctl images save`.")]) -> None:
    """Load the images from an archive (no network needed), then list what the lab has."""
    from labctl.runtimes import docker_images

    _engine()
    if not file.is_file():
        raise LabError(f"{file} does not exist", "give the archive `labctl images save` wrote")
    out = docker_images.docker(["load", "--input", str(file)], timeout=1800)
    if out.returncode != 0:
        raise LabError(f"docker load failed: {out.stderr.strip()}", "is the file complete?")
    for line in out.stdout.strip().splitlines():
        ui.success(line)
