"""Run the Go toolchain with visible progress, a log file, and a clear error on failure."""

from __future__ import annotations

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
    """Run `go ARGS`, streaming its output to a log and a status line; return seconds taken."""
    log_dir = cache_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{what.replace(' ', '-')}.log"
    tail: deque[str] = deque(maxlen=15)
    start = time.monotonic()
    console = Console(stderr=True)
    cmd = [go_binary(), *args]
    with log_path.open("w", encoding="utf-8") as log, console.status(f"{what}: starting go…") as status:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            line = line.rstrip()
            tail.append(line)
            elapsed = time.monotonic() - start
            status.update(f"{what} ({elapsed:.0f}s): {line[:100]}")
            if progress:
                progress(line)
        rc = proc.wait()
    seconds = time.monotonic() - start
    if rc != 0:
        raise LabError(
            f"{what} failed (go exited with {rc} after {seconds:.0f}s):\n  " + "\n  ".join(tail),
            f"full output in {log_path}; check that the Go module proxy is reachable and Go is 1.26+",
        )
    return seconds
