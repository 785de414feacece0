"""Run the Go toolchain with visible progress, a log file, and a clear error on failure."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from labctl.errors import LabError
from labctl.install.paths import cache_dir

ProgressFn = Callable[[str], None]

_GO_HINT = (
    "install Go 1.26 or newer (the lab builds its Collector and Prometheus from Go modules), "
    "or use the docker runtime; a binary you already have can be named with LABCTL_<NAME>_BIN"
)


def go_binary() -> str:
    go = shutil.which("go")
    if not go:
        raise LabError("the Go toolchain (`go`) is not on PATH", _GO_HINT)
    return go


def has_go() -> bool:
    return shutil.which("go") is not None


def cached_without_go(component: str, binary: Path) -> dict[str, object]:
    """Without Go a cached build cannot be checked against the sources: use it, and say so."""
    return {
        "component": component,
        "binary": str(binary),
        "built": False,
        "seconds": 0.0,
        "note": "cached build used without Go: it cannot be checked against the pinned sources",
    }


def go_version() -> str:
    out = subprocess.run([go_binary(), "version"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LabError(f"`go version` failed: {out.stderr.strip()}", _GO_HINT)
    return out.stdout.strip()


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # The work tree may be shared or not a git checkout at all: never stamp VCS info.
    flags = env.get("GOFLAGS", "")
    if "-buildvcs" not in flags:
        env["GOFLAGS"] = (flags + " -buildvcs=false").strip()
    return env


def fingerprint(parts: list[str], files: list[Path]) -> str:
    """A digest of everything that decides the built binary, for the up-to-date check."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def module_dir(module: str, version: str) -> Path:
    """Where `go mod download` put a module's source (read-only; copy it before building in it)."""
    out = subprocess.run(
        [go_binary(), "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        env=go_env(),
        check=False,
    )
    if out.returncode != 0:
        raise LabError(
            f"go mod download {module}@{version} failed: {out.stderr.strip() or out.stdout}",
            "check that the Go module proxy is reachable (GOPROXY)",
        )
    return Path(json.loads(out.stdout)["Dir"])


def stamp_path(binary: Path) -> Path:
    return binary.with_name(f".{binary.name}.stamp.json")


def is_up_to_date(binaries: list[Path], digest: str) -> bool:
    for binary in binaries:
        if not binary.is_file():
            return False
        try:
            stamp = json.loads(stamp_path(binary).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if stamp.get("fingerprint") != digest:
            return False
    return True


def write_stamp(binary: Path, digest: str, info: dict[str, str]) -> None:
    stamp = {"fingerprint": digest, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
    stamp_path(binary).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")


def run_go(
    args: list[str], *, cwd: Path | None, env: dict[str, str], what: str, progress: ProgressFn | None = None
) -> float:
    """Run `go ARGS`, streaming its output to a log and a status line; return seconds taken.

    With `progress` the caller owns the display (e.g. a rich Progress: only one live display may be
    active), and gets "<what> (<seconds>s): <last go line>"; without it a status spinner is shown here.
    """
    log_dir = cache_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{what.replace(' ', '-')}.log"
    tail: deque[str] = deque(maxlen=15)
    start = time.monotonic()
    cmd = [go_binary(), *args]
    with contextlib.ExitStack() as stack:
        if progress is None:
            status = stack.enter_context(Console(stderr=True).status(f"{what}: starting go…"))
            progress = status.update
        progress(f"{what}: starting go…")
        log = stack.enter_context(log_path.open("w", encoding="utf-8"))
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            line = line.rstrip()
            tail.append(line)
            progress(f"{what} ({time.monotonic() - start:.0f}s): {line[:100]}")
        rc = proc.wait()
    seconds = time.monotonic() - start
    if rc != 0:
        raise LabError(
            f"{what} failed (go exited with {rc} after {seconds:.0f}s):\n  " + "\n  ".join(tail),
            f"full output in {log_path}; check that the Go module proxy is reachable and Go is 1.26+",
        )
    return seconds
