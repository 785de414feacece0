"""A tiny TCP fault relay: sits on one hop and passes, delays or black-holes the bytes.

Why our own and not Toxiproxy: no extra binary to install, and it runs the same way natively and
inside a container (`python -m labctl.faults.relay`). Modes:
  pass       forward bytes both ways (used to measure the relay itself)
  blackhole  accept the connection, read and discard, never answer: a real partition — the client's
             request hangs until its own timeout fires
  latency    forward, but hold every chunk for --latency-ms before passing it on
It writes a small JSON status file (connections, bytes) so a fault can prove traffic reached it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path

MODES = ("pass", "blackhole", "latency")


class Relay:
    def __init__(self, target: tuple[str, int], mode: str, latency_ms: int, status: Path | None) -> None:
        self.target = target
        self.mode = mode
        self.latency = latency_ms / 1000.0
        self.status_path = status
        self.connections = 0
        self.bytes_in = 0
        self.started = time.time()

    def write_status(self) -> None:
        if not self.status_path:
            return
        data = {
            "pid": os.getpid(),
            "mode": self.mode,
            "target": f"{self.target[0]}:{self.target[1]}",
            "latency_ms": int(self.latency * 1000),
            "connections": self.connections,
            "bytes_in": self.bytes_in,
            "started": self.started,
        }
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.status_path)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.write_status()
        try:
            if self.mode == "blackhole":
                await self._swallow(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            await asyncio.gather(
                self._pipe(reader, up_writer, count=True),
                self._pipe(up_reader, writer, count=False),
                return_exceptions=True,
            )
        finally:
            writer.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            self.bytes_in += len(chunk)
            self.write_status()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool) -> None:
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if count:
                    self.bytes_in += len(chunk)
                if self.mode == "latency" and self.latency > 0:
                    await asyncio.sleep(self.latency)
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _main(args: argparse.Namespace) -> None:
    relay = Relay(_hostport(args.target), args.mode, args.latency_ms, Path(args.status) if args.status else None)
    host, port = _hostport(args.listen)
    server = await asyncio.start_server(relay.handle, host, port, reuse_address=True)
    relay.write_status()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labctl.faults.relay", description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept on")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--mode", choices=MODES, default="pass")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--status", help="JSON status file to keep up to date")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
