"""The gRPC front: a child process that runs the proxy's OTLP/gRPC server on the machine's other core.

gRPC's own machinery (HTTP/2, the completion queue, grpc.aio's per-call tasks) costs the proxy about
as much CPU per request as the contract check and the inspection together, and the proxy is one
Python process. So a child takes the calls and relays each request's bytes, metadata and peer to the
proxy over a socket; the proxy decides (auth, parse, contract, spool: grpc_receiver.GrpcReceiver.answer)
and sends back the status and reply, which the front returns to the client. grpc enforces the size
limit (RESOURCE_EXHAUSTED) and inflates gzip here, as the in-process server did.

    python -m labctl.proxy.grpc_front --listen 127.0.0.1:4317 --max-bytes N --fd FD

Frames both ways on the socket FD: 4-byte big-endian length + pickle of one message:
    front -> proxy: ("ready", port) | ("error", text) once at start, then
                    (call id, signal name, body, metadata pairs, peer) per call
    proxy -> front: (call id, status code name or "", message, reply bytes, trailing metadata)
                    | ("stop",): finish the calls in flight (1 s), then exit
The front exits at end of input, so it never outlives the proxy (and the kernel ends it if the proxy
is killed: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import itertools
import pickle
import signal
import socket
import struct
import sys
from typing import Any

_LEN = struct.Struct(">I")
SERVICES = {
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
}


def frame(msg: Any) -> bytes:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


class Frames(asyncio.Protocol):
    """Length-prefixed pickles off a stream socket: the ones that arrived together are handed to
    `on_messages` as a list (its answers can then go in one write); `on_eof` at the end."""

    def __init__(self, on_messages: Any, on_eof: Any) -> None:
        self.on_messages = on_messages
        self.on_eof = on_eof
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, size = 0, len(buf)
        msgs = []
        while size - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if size - pos - 4 < n:
                break
            msgs.append(pickle.loads(memoryview(buf)[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
            self.on_messages(msgs)

    def eof_received(self) -> bool:
        self.on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_eof()


def launch(listen: str, max_bytes: int) -> tuple[Any, socket.socket]:
    """Start the front's process: (its Popen, the proxy's end of their socket). Kept light (no grpc,
    no asyncio loop) so the proxy can launch it before its own imports and set-up, which then overlap
    the front's start."""
    import os
    import subprocess
    from pathlib import Path

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the child imports this very labctl
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "labctl.proxy.grpc_front", "--listen", listen]
    cmd += ["--max-bytes", str(max_bytes), "--fd", str(theirs.fileno())]
    try:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),))
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, ours


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL (Linux)
    except (OSError, AttributeError):
        pass  # elsewhere the end of input still ends the front


async def run_front(listen: str, max_bytes: int, sock: socket.socket) -> None:
    import grpc

    loop = asyncio.get_running_loop()
    pending: dict[int, asyncio.Future[Any]] = {}
    ids = itertools.count(1)
    done = asyncio.Event()
    stopping = asyncio.Event()

    def on_messages(msgs: list[Any]) -> None:
        for msg in msgs:
            if msg[0] == "stop":
                stopping.set()
                continue
            fut = pending.pop(msg[0], None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def on_eof() -> None:
        for fut in pending.values():
            if not fut.done():
                fut.set_result((0, "UNAVAILABLE", "the proxy is stopping", b"", ()))
        pending.clear()
        done.set()

    transport, _ = await loop.create_unix_connection(lambda: Frames(on_messages, on_eof), sock=sock)
    write = transport.write
    out: list[bytes] = []  # the calls relayed in this turn of the loop: sent in one write at its end

    def flush() -> None:
        data = b"".join(out)
        out.clear()
        write(data)

    def relay(data: bytes) -> None:
        if not out:
            loop.call_soon(flush)
        out.append(data)

    def handler(name: str) -> Any:
        async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
            if done.is_set():
                await context.abort(grpc.StatusCode.UNAVAILABLE, "the proxy is stopping")
            call = next(ids)
            fut = pending[call] = loop.create_future()
            metadata = tuple((m[0], m[1]) for m in context.invocation_metadata() or ())
            relay(frame((call, name, body, metadata, context.peer() or "")))
            _, code, message, reply, trailing = await fut
            if code:
                await context.abort(getattr(grpc.StatusCode, code), message, trailing_metadata=trailing)
            return reply

        return export

    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", max_bytes), ("grpc.so_reuseport", 0)]
    )
    for name, service in SERVICES.items():
        server.add_registered_method_handlers(
            service, {"Export": grpc.unary_unary_rpc_method_handler(handler(name))}
        )
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError:
        port = 0
    if not port:
        write(frame(("error", f"cannot listen for OTLP gRPC on {listen}")))
        await asyncio.sleep(0)
        transport.close()
        return
    await server.start()
    write(frame(("ready", port)))
    stop_wait = asyncio.ensure_future(stopping.wait())
    done_wait = asyncio.ensure_future(done.wait())
    await asyncio.wait([stop_wait, done_wait], return_when=asyncio.FIRST_COMPLETED)
    # Asked to stop: the calls in flight get a second to be answered; at end of input, none can be.
    await server.stop(grace=1.0 if not done.is_set() else 0)
    stop_wait.cancel()
    done_wait.cancel()
    transport.close()


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    # Ctrl-C in the proxy's terminal reaches the whole group: the proxy decides when the front stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ap = argparse.ArgumentParser(prog="python -m labctl.proxy.grpc_front")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--max-bytes", type=int, required=True)
    ap.add_argument("--fd", type=int, required=True)
    args = ap.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    try:
        asyncio.run(run_front(args.listen, args.max_bytes, sock))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
