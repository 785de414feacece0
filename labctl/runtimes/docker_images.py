"""The images a Docker lab needs: which (pins + overrides), whether they are here, and the proxy's own.

Pins live in compose/versions.env. `LAB_COLLECTOR_IMAGE`, `LAB_PROMETHEUS_IMAGE`, `LAB_GRAFANA_IMAGE` and
`LAB_PYTHON_IMAGE` in the shell override them at `labctl up` (a local mirror, an instructor's build); the
choice is recorded in the lab's state, so later commands of that lab use the same images.

The proxy image is built by labctl itself (never by compose): from the pinned Python image and a
wheelhouse (compose/wheelhouse/, `labctl images wheelhouse`), without network, under a tag derived from
its content — `labctl-proxy:<hash>` — so an unchanged lab never rebuilds and two labs never share a stale
image. The build log goes to the lab's logs folder (`labctl logs proxy-build`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabError
from labctl.model import LabModel

# service -> the versions.env / environment variable naming its image
IMAGE_VARS = {
    "collector": "LAB_COLLECTOR_IMAGE",
    "prometheus": "LAB_PROMETHEUS_IMAGE",
    "grafana": "LAB_GRAFANA_IMAGE",
    "alertmanager": "LAB_ALERTMANAGER_IMAGE",
    "victorialogs": "LAB_VICTORIALOGS_IMAGE",
    "jaeger": "LAB_JAEGER_IMAGE",
    "python": "LAB_PYTHON_IMAGE",  # the proxy image's base
}
PROXY_REPO = "labctl-proxy"


@dataclass
class Image:
    role: str  # collector | prometheus | grafana | python | proxy
    ref: str
    present: bool

    def as_dict(self) -> dict[str, object]:
        return {"role": self.role, "ref": self.ref, "present": self.present}


def clean_call(client_call: list[str]) -> list[str]:
    """The docker CLI call without the shell's LAB_*/COMPOSE_* variables (compose lets them win over
    --env-file, so they would silently override what labctl generated for this instance)."""
    stray = sorted(k for k in os.environ if k.startswith(("LAB_", "COMPOSE_")))
    if not stray:
        return list(client_call)
    return ["env", *(a for k in stray for a in ("-u", k)), *client_call]


def docker(
    args: list[str], client: list[str] | None = None, timeout: float = 600, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(client or ["docker"]), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )  # type: ignore[call-overload]


def chosen_images(model: LabModel, recorded: dict[str, str] | None = None) -> dict[str, str]:
    """Each role's image: the shell's LAB_*_IMAGE, else what this lab recorded, else the pin."""
    out = {}
    for role, var in IMAGE_VARS.items():
        out[role] = os.environ.get(var) or (recorded or {}).get(role) or model.versions[var]
    return out


def image_id(ref: str, client: list[str] | None = None) -> str | None:
    out = docker(["image", "inspect", "--format", "{{.Id}}", ref], client, timeout=30)
    return out.stdout.strip() or None if out.returncode == 0 else None


def image_ids(refs: list[str], client: list[str] | None = None) -> dict[str, str]:
    """ref -> image id of those present: one `docker image inspect` for all (each call is a CLI start,
    a tenth of a second on a busy machine); one per ref only when some are missing."""
    unique = list(dict.fromkeys(refs))
    if not unique:
        return {}
    out = docker(["image", "inspect", "--format", "{{.Id}}", *unique], client, timeout=30)
    ids = out.stdout.split()
    if out.returncode == 0 and len(ids) == len(unique):
        return dict(zip(unique, ids, strict=True))
    return {ref: found for ref in unique if (found := image_id(ref, client))}


def pull(ref: str, client: list[str] | None = None) -> str | None:
    """Pull one image; None when it worked, else the engine's one-line reason."""
    out = docker(["pull", "--quiet", ref], client)
    if out.returncode == 0:
        return None
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"docker pull exited {out.returncode}"


def how_to_get(ref: str) -> str:
    return (
        f"`docker pull {ref}` where a registry is reachable, or `labctl images load FILE` with the "
        "instructor's archive; `labctl images` lists what the lab needs"
    )


GET_IMAGES = "`labctl images pull`, or `labctl images load FILE` (offline)"


# --- the proxy image ---------------------------------------------------------------------------------


def wheelhouse_dir(model: LabModel) -> Path:
    return model.root / "compose" / "wheelhouse"


def requirements(model: LabModel) -> list[str]:
    import tomllib

    doc = tomllib.loads((model.root / "pyproject.toml").read_text())
    return list(doc["project"]["dependencies"])


def image_python(python_image: str, client: list[str] | None = None) -> tuple[str, str]:
    """(python version like 3.11, machine like x86_64) of the image's own python."""
    out = docker(
        [
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "python",
            python_image,
            "-c",
            "import platform, sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}', platform.machine())",
        ],
        client,
        timeout=120,
    )
    if out.returncode != 0 or len(out.stdout.split()) != 2:
        raise LabError(
            f"cannot run python in {python_image}: {(out.stderr.strip().splitlines() or ['?'])[-1]}",
            "is the image present? `labctl images` lists what the lab needs",
        )
    version, machine = out.stdout.split()
    return version, machine


def wheelhouse_current(model: LabModel, version: str, machine: str) -> bool:
    manifest = wheelhouse_dir(model) / "manifest.json"
    try:
        doc = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    return bool(doc == {"python": version, "machine": machine, "requirements": requirements(model)})


def make_wheelhouse(
    model: LabModel, python_image: str, client: list[str] | None = None, log: Path | None = None
) -> Path:
    """Wheels of the proxy's dependencies for the image's Python and machine, downloaded by this host's
    pip (its index, proxy and certificates): the image build itself then needs no network."""
    version, machine = image_python(python_image, client)
    where = wheelhouse_dir(model)
    if wheelhouse_current(model, version, machine):
        return where
    where.mkdir(parents=True, exist_ok=True)
    reqs = requirements(model)
    (where / "requirements.txt").write_text("\n".join(reqs) + "\n")
    arch = {"arm64": "aarch64"}.get(machine, machine)
    platforms = [
        a
        for tag in ("manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34", "linux")
        for a in ("--platform", f"{tag}_{arch}")
    ]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "cp",
        *platforms,
        "--dest",
        str(where),
        "-r",
        str(where / "requirements.txt"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{out.stdout}{out.stderr}\n")
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or ["?"])[-1]
        raise LabError(
            f"could not download the proxy's dependencies into {where}: {reason}",
            "on a machine with network run `labctl images wheelhouse` and copy compose/wheelhouse/ "
            "here (or load the instructor's images: `labctl images load FILE`)",
        )
    (where / "manifest.json").write_text(
        json.dumps({"python": version, "machine": machine, "requirements": reqs}, indent=1) + "\n"
    )
    return where


def _context_files(model: LabModel) -> list[Path]:
    """What the proxy image is made of (the build context after .dockerignore), in a stable order."""
    root = model.root
    files = [root / "compose" / "proxy.Dockerfile", root / ".dockerignore"]
    files += sorted(
        p
        for p in (root / "labctl").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    return files


def proxy_tag(model: LabModel, python_ref: str, python_id: str) -> str:
    """labctl-proxy:<first 12 hex of a hash over the code, the dependencies and the base image's id>."""
    digest = hashlib.sha256(f"{python_ref}\n{python_id}\n".encode())
    for path in _context_files(model):
        if path.is_file():
            digest.update(str(path.relative_to(model.root)).encode() + b"\0")
            digest.update(path.read_bytes())
    # The dependency set, not the wheelhouse: a laptop that loaded the instructor's images (and has no
    # wheelhouse) computes the same tag and builds nothing.
    digest.update("\n".join(requirements(model)).encode())
    return f"{PROXY_REPO}:{digest.hexdigest()[:12]}"


def ensure_proxy_image(
    model: LabModel,
    python_ref: str,
    log: Path,
    client: list[str] | None = None,
    progress: object = None,
    python_id: str | None = None,
) -> str:
    """The proxy image for this lab's code and base image: built only when missing (its tag is its
    content). Returns the tag. `python_id`: the base image's id, when the caller just looked it up."""
    say = progress if callable(progress) else (lambda _msg: None)
    python_id = python_id or image_id(python_ref, client)
    if python_id is None:
        raise LabError(f"the proxy's base image {python_ref} is not on this machine", how_to_get(python_ref))
    tag = proxy_tag(model, python_ref, python_id)
    if image_id(tag, client):
        return tag
    version, machine = image_python(python_ref, client)
    if not wheelhouse_current(model, version, machine):
        say(f"downloading the proxy's dependencies into {wheelhouse_dir(model)} (once)")
        make_wheelhouse(model, python_ref, client, log)
        tag = proxy_tag(model, python_ref, python_id)
    say(f"building the proxy image {tag} (log: {log})")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        cmd = [
            *(client or ["docker"]),
            "build",
            "--force-rm",
            "--network",
            "none",
            "--file",
            str(model.root / "compose" / "proxy.Dockerfile"),
            "--build-arg",
            f"LAB_PYTHON_IMAGE={python_ref}",
            "--label",
            "org.labctl.role=proxy",
            "--tag",
            tag,
            str(model.root),
        ]
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False, timeout=900)
    if done.returncode != 0:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-3:]
        raise LabError(
            "building the proxy image failed:\n" + "\n".join(tail),
            f"the whole build log: `labctl logs proxy-build` ({log})",
        )
    return tag


def docker_project_left(instance: str) -> bool:
    """Docker still holds a container or volume of this instance's compose project (asked only when the
    state dir has no lab: a student who deleted it after `down` can still remove what `down` kept)."""
    from labctl.runtimes.compose_names import compose_project

    if not shutil.which("docker"):
        return False
    label = f"label=com.docker.compose.project={compose_project(instance)}"
    for kind in (["ps", "-aq"], ["volume", "ls", "-q"]):
        try:
            out = subprocess.run(
                [*clean_call(["docker"]), *kind, "--filter", label],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return False
        if out.returncode != 0:
            return False  # no engine answers: nothing to find
        if out.stdout.strip():
            return True
    return False
