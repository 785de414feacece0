"""A tiny TCP fault relay: sits on one hop and passes, delays, black-holes or refuses the bytes.

Why our own and not Toxiproxy: no extra binary to install, and it runs the same way natively and
inside a container (`python -m labctl.faults.relay`). Modes:
  pass       forward bytes both ways
  blackhole  a real partition: connections are accepted but nothing goes through — the client's request
             hangs until its own timeout fires. Open connections stall too (a client reusing a keep-alive
             connection hangs as well). What the clients send meanwhile is held, and goes through when
             the mode switches back, like TCP after a partition heals (so an in-flight request can still
             succeed right after a heal instead of waiting for the client's next attempt).
  refuse     the listeners close (new connections: "connection refused") and open ones are reset
  latency    forward, but hold every chunk for the latency before passing it on

One process may relay several routes (LISTEN=TARGET). With --control it serves a loopback-only HTTP API
to switch the mode at runtime — GET /status, PUT /mode {"mode": ..., "latency_ms": ...}; the PUT answers
only once the new mode is in effect (listeners closed or reopened, connections stalled or reset), so a
caller that got 200 needs no polling. --state keeps the mode in a file read again at start, so a
restarted relay keeps an active fault. --status writes a JSON status file (for fault relays without a
control port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("pass", "blackhole", "refuse", "latency")
CHUNK = 65536
HOLD_MAX = 4 << 20  # bytes held per connection during a black hole; beyond that the connection is lost


class ModeError(Exception):
    """A mode change that cannot be done (bad request, or a port taken meanwhile); status code + message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Route:
    listen: tuple[str, int]
    target: tuple[str, int]
    server: asyncio.Server | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "listen": _join(self.listen),
            "target": _join(self.target),
            "listening": self.server is not None,
        }


@dataclass(eq=False)  # identity: kept in a set of open connections
class Conn:
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    held: int = 0  # bytes the client sent during a black hole
    lost: bool = False  # held more than HOLD_MAX: reset instead of resumed


class Relay:
    def __init__(
        self,
        routes: list[Route],
        mode: str,
        latency_ms: int,
        status: Path | None = None,
        state: Path | None = None,
        http: bool = False,
    ) -> None:
        self.routes = routes
        self.mode = mode
        self.latency = latency_ms / 1000.0
        self.status_path = status
        self.state_path = state
        self.http = http  # the routes carry HTTP/1.x: an unreachable target is answered with 502
        self.flowing = asyncio.Event()
        self.conns: set[Conn] = set()
        self.connections = 0
        self.bytes_in = 0
        self.started = time.time()
        self.switched = time.time()
        self.concealed = False  # the mode was set by a hidden fault (see set_mode)
        self._lock = asyncio.Lock()  # one mode change at a time

    # --- status ------------------------------------------------------------------------------------

    def status(self, detail: bool = True) -> dict[str, Any]:
        """With detail=False while a hidden fault set the mode, the mode is left out (blind challenges)."""
        mode: dict[str, Any] = {
            "mode": self.mode,
            "latency_ms": round(self.latency * 1000),
            "mode_since": self.switched,
        }
        return {
            "pid": os.getpid(),
            **(mode if detail or not self.concealed else {}),
            "routes": [r.describe() for r in self.routes],
            "target": _join(self.routes[0].target) if self.routes else "",
            "connections": self.connections,
            "open_connections": len(self.conns),
            "held_connections": sum(1 for c in self.conns if c.held) if not self.flowing.is_set() else 0,
            "bytes_in": self.bytes_in,
            "started": self.started,
        }

    def write_status(self) -> None:
        if self.status_path:
            _write_json(self.status_path, self.status())

    # --- mode switching ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.mode != "blackhole":
            self.flowing.set()
        if self.mode != "refuse":
            await self._open_listeners(reopen=False)
        self.write_status()

    async def set_mode(self, mode: str, latency_ms: int | None = None, quiet: bool = False) -> dict[str, Any]:
        """quiet: a hidden fault switches — no log line, and GET /status leaves the mode out until the next
        switch (GET /status?detail=1 still shows it: that is how labctl verifies)."""
        if mode not in MODES:
            raise ModeError(400, f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if latency_ms is not None and (not isinstance(latency_ms, int) or latency_ms < 0):
            raise ModeError(400, "latency_ms must be a whole number of milliseconds, 0 or more")
        async with self._lock:
            old = self.mode
            if mode == "refuse" and old != "refuse":
                self._close_listeners()  # first: no new connection slips in between
                self._reset_all()
            elif old == "refuse" and mode != "refuse":
                await self._open_listeners()  # ModeError (409) when a port was taken meanwhile
            if latency_ms is not None:
                self.latency = latency_ms / 1000.0
            self.mode = mode
            if mode == "blackhole":
                self.flowing.clear()
            else:
                for conn in [c for c in self.conns if c.lost]:
                    _reset(conn)  # what it sent was not kept: resuming it would corrupt its stream
                self.flowing.set()  # held connections go on
            self.switched = time.time()
            self.concealed = quiet and mode != "pass"
            # One line per switch in the relay's log (`labctl logs scrape-relay`): what changed, when.
            if not quiet:
                print(
                    f"relay {os.getpid()}: mode {old} -> {mode}"
                    + (f" ({round(self.latency * 1000)} ms)" if mode == "latency" else "")
                    + f"; {len(self.conns)} open connection(s)",
                    flush=True,
                )
            if self.state_path:
                _write_json(
                    self.state_path,
                    {"mode": self.mode, "latency_ms": round(self.latency * 1000), "quiet": quiet},
                )
            self.write_status()
            return self.status()

    async def _open_listeners(self, reopen: bool = True) -> None:
        opened: list[Route] = []
        for route in self.routes:
            if route.server is not None:
                continue
            try:
                route.server = await asyncio.start_server(
                    functools.partial(self.handle, route), *route.listen, reuse_address=True
                )
            except OSError as exc:
                for done in opened:
                    assert done.server is not None
                    done.server.close()
                    done.server = None
                why = (
                    " again: {} (another process took the port while the relay refused connections)"
                    if reopen
                    else ": {} (is another lab or relay using it?)"
                ).format(exc.strerror or exc)
                raise ModeError(409, f"cannot listen on {_join(route.listen)}{why}") from None
            opened.append(route)

    def _close_listeners(self) -> None:
        for route in self.routes:
            if route.server is not None:
                route.server.close()  # stops accepting; open connections are reset separately
                route.server = None

    def _reset_all(self) -> None:
        for conn in list(self.conns):
            _reset(conn)

    # --- connections -------------------------------------------------------------------------------

    async def handle(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(writers=[writer])
        if self.mode == "refuse":  # accepted just before the listener closed
            _reset(conn)
            return
        self.connections += 1
        self.conns.add(conn)
        self.write_status()
        try:
            held = await self._hold(conn, reader)
            if held is None or self.mode == "refuse":
                return  # the client gave up during the black hole, or it was reset (refuse)
            try:
                up_reader, up_writer = await asyncio.open_connection(*route.target)
            except OSError as exc:
                if self.http:
                    writer.write(_bad_gateway(route, exc))
                    with contextlib.suppress(OSError):
                        await writer.drain()
                return
            conn.writers.append(up_writer)
            if held:
                up_writer.write(held)
            await asyncio.gather(
                self._pipe(reader, up_writer, count=True),
                self._pipe(up_reader, writer, count=False),
                return_exceptions=True,
            )
        finally:
            self.conns.discard(conn)
            for w in conn.writers:
                w.close()

    async def _hold(self, conn: Conn, reader: asyncio.StreamReader) -> bytes | None:
        """While black-holed: keep what the client sends (nothing answers). None when it hangs up."""
        held = bytearray()
        while not self.flowing.is_set():
            read = asyncio.ensure_future(reader.read(CHUNK))
            flow = asyncio.ensure_future(self.flowing.wait())
            await asyncio.wait({read, flow}, return_when=asyncio.FIRST_COMPLETED)
            flow.cancel()
            if not read.done():
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await read
            if read.done() and not read.cancelled():
                chunk = read.result()
                if not chunk:
                    return None
                self.bytes_in += len(chunk)
                if len(held) + len(chunk) > HOLD_MAX:
                    conn.lost = True
                else:
                    held += chunk
                conn.held += len(chunk)
                self.write_status()
        return bytes(held)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool) -> None:
        try:
            while True:
                chunk = await reader.read(CHUNK)
                if not chunk:
                    break
                if count:
                    self.bytes_in += len(chunk)
                await self.flowing.wait()  # a black hole stalls open connections here, until healed
                if self.mode == "latency" and self.latency > 0:
                    await asyncio.sleep(self.latency)
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()

    # --- control API (loopback HTTP, one request per connection) -----------------------------------

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            body = await reader.readexactly(int(headers.get("content-length") or 0))
            code, doc = await self._route(method, path, body)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            code, doc = 400, {"error": "malformed request"}
        payload = json.dumps(doc).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(code, "Error")
        writer.write(
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    async def _route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        path, _, query = path.partition("?")
        if path == "/status" and method in ("GET", "HEAD"):
            return 200, self.status(detail="detail=1" in query.split("&"))
        if path == "/mode" and method == "PUT":
            try:
                ask = json.loads(body or b"{}")
            except ValueError:
                ask = None
            if not isinstance(ask, dict):
                return 400, {"error": 'body must be a JSON object like {"mode": "blackhole"}'}
            try:
                return 200, await self.set_mode(
                    str(ask.get("mode", "")), ask.get("latency_ms"), bool(ask.get("quiet"))
                )
            except ModeError as exc:
                return exc.status, {"error": str(exc), **self.status()}
        return 404, {"error": f"{method} {path}: the relay answers GET /status and PUT /mode"}


def _reset(conn: Conn) -> None:
    """Abort with an RST (SO_LINGER 0), so the peer sees "connection reset", not a clean close."""
    for writer in conn.writers:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


def _bad_gateway(route: Route, exc: OSError) -> bytes:
    text = (
        f"labctl relay {_join(route.listen)}: cannot connect to {_join(route.target)}: "
        f"{exc.strerror or exc}\n"
    ).encode()
    return (
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        + f"Content-Length: {len(text)}\r\n\r\n".encode()
        + text
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)  # readers never see half a file


def _join(hostport: tuple[str, int]) -> str:
    return f"{hostport[0]}:{hostport[1]}"


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _saved_mode(path: Path | None) -> tuple[str, int] | None:
    try:
        saved = json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None
    if isinstance(saved, dict) and saved.get("mode") in MODES:
        return str(saved["mode"]), int(saved.get("latency_ms") or 0)
    return None


async def _main(args: argparse.Namespace) -> None:
    routes = [Route(_hostport(a), _hostport(b)) for a, _, b in (r.partition("=") for r in args.route or [])]
    if args.listen or args.target:
        if not (args.listen and args.target):
            raise SystemExit("--listen and --target go together")
        routes.append(Route(_hostport(args.listen), _hostport(args.target)))
    if not routes:
        raise SystemExit("nothing to relay: give --route LISTEN=TARGET (or --listen and --target)")
    state = Path(args.state) if args.state else None
    mode, latency = _saved_mode(state) or (args.mode, args.latency_ms)
    relay = Relay(routes, mode, latency, Path(args.status) if args.status else None, state, args.http)
    try:
        await relay.start()
    except ModeError as exc:  # a route's port is taken: say which, exit non-zero (`labctl up` shows it)
        raise SystemExit(f"relay: {exc}") from None
    control = None
    if args.control:
        try:
            control = await asyncio.start_server(relay.control, *_hostport(args.control), reuse_address=True)
        except OSError as exc:
            raise SystemExit(
                f"relay: cannot listen on {args.control} for its control API: {exc.strerror or exc}"
            ) from None
    print(
        f"relay {os.getpid()}: {mode} "
        + ", ".join(f"{_join(r.listen)} -> {_join(r.target)}" for r in routes)
        + (f"; control on {args.control}" if args.control else ""),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if control is not None:
        control.close()
    relay._close_listeners()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m labctl.faults.relay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--route", action="append", help="LISTEN=TARGET, both HOST:PORT (repeatable)")
    parser.add_argument("--listen", help="HOST:PORT to accept on (one route, with --target)")
    parser.add_argument("--target", help="HOST:PORT to forward to")
    parser.add_argument(
        "--mode", choices=MODES, default="pass", help="the mode at start (unless --state has one)"
    )
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--control", help="HOST:PORT of the control API (loopback)")
    parser.add_argument("--state", help="file keeping the mode across restarts")
    parser.add_argument("--status", help="JSON status file to keep up to date")
    parser.add_argument(
        "--http", action="store_true", help="the routes carry HTTP: answer 502 when a target is down"
    )
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
