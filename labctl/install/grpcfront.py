"""Build the proxy's Go gRPC front (labctl/proxy/grpcfront/) into the lab's bin directory.

Optional: where it is not built the proxy serves gRPC with its Python front (grpc_front.py), which
costs several times the CPU per call. The source is in this repository; `go build` takes its modules
from the module cache when it is warm (GOPROXY/GOFLAGS from the environment otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

from labctl.errors import LabError
from labctl.install.gobuild import (
    ProgressFn,
    cached_without_go,
    fingerprint,
    go_env,
    go_version,
    has_go,
    is_up_to_date,
    run_go,
    write_stamp,
)
from labctl.install.paths import bin_dir
from labctl.proxy.grpc_front import GO_BINARY

SOURCE = Path(__file__).resolve().parents[1] / "proxy" / "grpcfront"


def install_grpc_front(*, force: bool = False, progress: ProgressFn | None = None) -> dict[str, object]:
    target = bin_dir() / GO_BINARY
    if not has_go():
        if target.is_file() and not force:
            return cached_without_go("grpc-front", target)
        raise LabError(
            "the proxy's Go gRPC front needs the Go toolchain (`go`) to build",
            "install Go 1.26 or newer; without it the proxy serves gRPC with its Python front",
        )
    files = [*SOURCE.glob("*.go"), SOURCE / "go.mod", SOURCE / "go.sum"]
    digest = fingerprint([go_version()], files)
    if not force and is_up_to_date([target], digest):
        return {"component": "grpc-front", "binary": str(target), "built": False, "seconds": 0.0}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{GO_BINARY}.build")
    seconds = run_go(
        ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(staging), "."],
        cwd=SOURCE,
        env=go_env(),
        what="build grpc-front",
        progress=progress,
    )
    os.replace(staging, target)  # atomic: a running proxy's next start never sees half a binary
    write_stamp(target, digest, {"source": str(SOURCE)})
    return {"component": "grpc-front", "binary": str(target), "built": True, "seconds": round(seconds, 1)}
