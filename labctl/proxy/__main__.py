"""`python -m labctl.proxy --config FILE`: the logging proxy in the foreground, as `labctl proxy serve` runs
it, without loading the command line (typer, rich and the other commands). The runtimes start it this
way: every start of the proxy (`up`, a restart, a fault that changes its environment) pays for the
proxy's own imports only, which is most of the time a restart takes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from labctl.errors import LabError

if TYPE_CHECKING:
    from labctl.proxy.config import ProxyConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labctl.proxy", description=__doc__)
    parser.add_argument("--config", "-c", type=Path, required=True, help="proxy config YAML")
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    args = parser.parse_args(argv)
    from labctl.proxy import config as proxy_config

    try:
        serve(proxy_config.load(args.config), args.log_level)
    except LabError as exc:
        # The same two lines as `labctl proxy serve`, unwrapped: they end up in the service's log.
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"what to do: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    return 0


def serve(cfg: ProxyConfig, log_level: str) -> None:
    """Serve until SIGTERM / Ctrl-C; `labctl proxy serve` runs this too."""
    # Plain lines on stderr: the native runtime captures them into the service log. Headers are never
    # logged.
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    front = None
    if cfg.otlp_grpc is not None:
        # The gRPC front's process starts now: its start overlaps the imports below.
        from labctl.proxy.grpc_front import launch

        front = launch(str(cfg.otlp_grpc), cfg.max_request_bytes)
    from labctl.proxy.server import ProxyServer

    server = ProxyServer(cfg, can_restart=True, grpc_front=front)
    _tune_gc()
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
    if server.restart_asked:
        _run_again()


def _tune_gc() -> None:
    """Python's cycle collector runs whenever 700 more container objects are alive than at its last
    run. One export of 1000 points holds about 2000 of them (its items) until it is answered, so with
    that default every large export paid for about three collections, and for the older generations'
    walks that follow them: a fifth of the proxy's CPU on 1000-point exports (measured with
    tests/benchmarks/proxy_throughput.py). An export's objects are freed by reference counting once it
    is answered, so the collector need not see them: it runs after 20,000, and what was made at start
    (modules, config, contract) is frozen out of its walks."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _run_again() -> NoReturn:
    """POST /api/restart, once the proxy stopped: the same command line in this process (same PID, and
    in a container the same container), so the start reads everything afresh."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
