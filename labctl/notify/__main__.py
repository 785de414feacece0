"""`python -m labctl.notify`: the lab's notification receiver (Alertmanager's webhook; lab.yaml notify-receiver)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from labctl.notify.server import make_app
from labctl.notify.store import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labctl.notify", description=__doc__)
    parser.add_argument("--listen", default=os.environ.get("LAB_NOTIFY_LISTEN", "127.0.0.1:9097"))
    parser.add_argument("--data", type=Path, default=None, help="where notifications.jsonl is kept")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"--listen {args.listen!r} is not HOST:PORT (e.g. 127.0.0.1:9097)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(args.data / "notifications.jsonl" if args.data else None)
    web.run_app(make_app(store), host=host, port=int(port), print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
