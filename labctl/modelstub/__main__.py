"""`python -m labctl.modelstub`: serve the scenarios of a directory as the Messages API (the lab's model-stub)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aiohttp import web

from labctl.errors import LabError
from labctl.modelstub.scenario import load_dir
from labctl.modelstub.server import ModelStub

DEFAULT_SCENARIO = "hello-write"


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise LabError(f"--listen {value!r} is not HOST:PORT", "e.g. --listen 127.0.0.1:4380")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labctl.modelstub", description=__doc__)
    parser.add_argument("--listen", default=os.environ.get("LAB_MODELSTUB_LISTEN", "127.0.0.1:4380"))
    parser.add_argument("--scenarios", type=Path, required=True, help="directory of scenario files (*.yaml)")
    parser.add_argument(
        "--default-scenario",
        default=os.environ.get("LAB_MODELSTUB_SCENARIO", DEFAULT_SCENARIO),
        help="played when a request names none (header x-lab-scenario)",
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="where requests.jsonl (shapes only) is written"
    )
    args = parser.parse_args(argv)
    try:
        host, port = _listen(args.listen)
        scenarios = load_dir(args.scenarios)  # validated before anything listens
        if args.default_scenario not in scenarios:
            raise LabError(
                f"default scenario {args.default_scenario!r} is not in {args.scenarios}",
                f"scenarios there: {', '.join(scenarios)}",
            )
    except LabError as exc:
        print(f"model stub: {exc.message}" + (f"\n  → {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    log_path = None
    if args.data:
        args.data.mkdir(parents=True, exist_ok=True)
        log_path = args.data / "requests.jsonl"
    stub = ModelStub(scenarios, args.default_scenario, log_path)
    print(
        f"model stub: {len(scenarios)} scenarios from {args.scenarios} (default {args.default_scenario}); "
        f"Messages API on http://{host}:{port}",
        flush=True,
    )
    web.run_app(stub.app(), host=host, port=port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
