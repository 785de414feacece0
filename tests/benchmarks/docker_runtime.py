"""Benchmark: the Docker runtime on a real engine — engine + images, cold and warm `up module-3`, check,
and break/heal of every fault Docker supports.

Goals (issue 12): warm `up` <= 5 s, check <= 10 s, break and heal <= 3 s each. Run it inside the Docker
lane, which starts the private engine and builds the stand-in images (their time is its first figure):

    bash tests/tools/docker-engine.sh run -- python tests/benchmarks/docker_runtime.py [--no-faults]
        [--fault 'endpoint invalid-url' --fault storage-down ...] [--rounds N] [--warm-rounds N]

"Cold" up is the first `up module-3` of a new lab whose proxy image is not built yet (the image is
removed first; its wheelhouse stays, as on a prepared classroom machine); "warm" is `up module-3`
again on the running lab, then `down` and `up module-3` with every image present (`down` keeps the
stopped containers and networks, and `--free-ports` takes the stopped lab's ports back: nothing changed,
so labctl starts the kept containers itself, without compose). `--warm-rounds N` repeats `down` and
that warm `up` N times: on a shared machine one figure says little.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOALS = {"warm up": 5.0, "check": 10.0, "break": 3.0, "heal": 3.0}
FAULTS = [
    ["network"],
    ["network", "--mode", "refuse"],
    ["network", "--hop", "collector-prometheus"],
    ["network", "--hop", "collector-prometheus", "--mode", "refuse"],
    ["endpoint", "unreachable-host"],
    ["endpoint", "wrong-port"],
    ["endpoint", "protocol-mismatch"],
    ["endpoint", "invalid-url"],
    ["auth", "wrong"],
    ["collector-crash"],
    ["storage-down"],
    ["contract"],
    ["cardinality"],
    ["series-expiry"],  # a blind trap: its proof is that an exported point never shows
]


def labctl(state_dir: Path, instance: str, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "--instance", instance, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    took = time.perf_counter() - start
    if res.returncode not in ok:
        raise SystemExit(f"labctl {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return took, res.stdout


def wait_green(state_dir: Path, instance: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    report = ""
    while time.monotonic() < deadline:
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "labctl",
                "--state-dir",
                str(state_dir),
                "--instance",
                instance,
                "check",
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
        if res.returncode == 0:  # check exits 0 only when every checked layer is green
            return
        report = res.stdout
        time.sleep(1)
    raise SystemExit(f"the lab did not turn green:\n{report}")


def row(name: str, seconds: float, goal: str = "") -> None:
    limit = GOALS.get(goal)
    verdict = "" if limit is None else ("  ok" if seconds <= limit else f"  over the {limit:.0f} s goal")
    # The 1-minute load average beside each figure: on a shared machine it says what the figure is worth.
    print(f"{name:<52} {seconds:6.2f} s  (load {os.getloadavg()[0]:4.1f}){verdict}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-faults", action="store_true", help="only up, check and down")
    parser.add_argument(
        "--fault",
        action="append",
        metavar="ARGS",
        help="only this fault, as `break` takes it (e.g. 'endpoint invalid-url'); repeatable",
    )
    parser.add_argument("--rounds", type=int, default=1, help="break and heal each fault this many times")
    parser.add_argument("--no-check", action="store_true", help="no `check` while a fault is active")
    parser.add_argument("--warm-rounds", type=int, default=1, help="times to repeat `down` + warm `up`")
    args = parser.parse_args()
    if os.environ.get("LABCTL_DOCKER_LANE") != "1":
        raise SystemExit(
            "run inside the Docker lane: bash tests/tools/docker-engine.sh run -- python " + __file__
        )
    from labctl.model import load_model
    from labctl.runtimes import docker_images

    model = load_model()
    python_ref = docker_images.chosen_images(model)["python"]
    python_id = docker_images.image_id(python_ref)
    assert python_id, python_ref
    tag = docker_images.proxy_tag(model, python_ref, python_id)
    subprocess.run(["docker", "image", "rm", "--force", tag], capture_output=True, check=False)

    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    instance = f"bench{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / "lab"
        try:
            took, _ = labctl(state_dir, instance, "--runtime", "docker", "up", "module-3", "--free-ports")
            row("cold up module-3 (proxy image built)", took)
            took, _ = labctl(state_dir, instance, "up", "module-3")
            row("warm up module-3 (already running)", took, "warm up")
            for _ in range(args.warm_rounds):
                took, _ = labctl(state_dir, instance, "down")
                row("down", took)
                took, out = labctl(
                    state_dir, instance, "--runtime", "docker", "up", "module-3", "--free-ports"
                )
                how = (
                    "kept containers"
                    if "starting the kept containers" in " ".join(out.split())
                    else "compose"
                )
                row(f"warm up module-3 (from down, {how})", took, "warm up")
            wait_green(state_dir, instance)
            took, _ = labctl(state_dir, instance, "check")
            row("check (green lab)", took, "check")
            faults = [f.split() for f in args.fault] if args.fault else FAULTS
            if not args.no_faults:
                for fault in [f for f in faults for _ in range(args.rounds)]:
                    name = " ".join(fault)
                    took, _ = labctl(state_dir, instance, "break", *fault)
                    row(f"break {name}", took, "break")
                    if not args.no_check:
                        took, _ = labctl(state_dir, instance, "check", ok=tuple(range(256)))
                        row(f"  check during {name}", took, "check")
                    took, _ = labctl(state_dir, instance, "heal", fault[0])
                    row(f"heal {name}", took, "heal")
                    wait_green(state_dir, instance)
        finally:
            took, _ = labctl(state_dir, instance, "down", "--volumes", ok=tuple(range(256)))
            row("down --volumes", took)


if __name__ == "__main__":
    main()
