"""The gRPC front: a child process that runs the proxy's OTLP/gRPC server on the machine's other core.

gRPC's own machinery (HTTP/2, the completion queue, grpc.aio's per-call tasks) costs the proxy about
as much CPU per request as the contract check and the inspection together, and the proxy is one
Python process. So a child takes the calls and relays each request's bytes, metadata and peer to the
proxy over a socket; the proxy decides (auth, parse, contract, spool: grpc_receiver.GrpcReceiver.answer)
and sends back the status and reply, which the front returns to the client. grpc enforces the size
limit (RESOURCE_EXHAUSTED) and inflates gzip here, as the in-process server did.

This module is the front where nothing else is built; `launch` prefers the Go front (grpcfront/,
`labctl install grpc-front`), which does the same for a fraction of grpc.aio's CPU per call.

    python -m labctl.proxy.grpc_front --listen 127.0.0.1:4317 --max-bytes N --fd FD

Frames both ways on the socket FD (the Go front, grpcfront/main.go, speaks the same): a 4-byte
big-endian length, then that many bytes: one kind byte and its fields, big-endian, strings UTF-8.
    front -> proxy, once at start:
        "R" port:u16                        listening (the port bound)
        "E" text                            cannot listen: the reason, the rest of the frame
    front -> proxy, per call:
        "C" call:u32 signal:u8 peer_len:u16 meta_len:u32 peer meta body
            signal: index in SIGNAL_NAMES; peer as grpcio writes it ("ipv4:127.0.0.1:5");
            meta: the metadata pairs, each key_len:u16 value_len:u32 key value ("-bin" keys carry
            bytes, the others text); body: the request's (inflated) bytes, the rest of the frame
    proxy -> front:
        "A" call:u32 code:u8 message_len:u32 trailing_len:u32 message trailing reply
            code: the gRPC status code (0 OK); trailing: pairs as meta above; reply: the rest
        "S"                                 finish the calls in flight (1 s), then exit
The front exits at end of input, so it never outlives the proxy (and the kernel ends it if the proxy
is killed: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import itertools
import signal
import socket
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any

SERVICES = {
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
}
SIGNAL_NAMES = tuple(SERVICES)  # a call frame's signal byte indexes this

_LEN = struct.Struct(">I")
_READY = struct.Struct(">IcH")
_CALL = struct.Struct(">IcIBHI")  # length, "C", call, signal, peer_len, meta_len
_ANSWER = struct.Struct(">IcIBII")  # length, "A", call, code, message_len, trailing_len
_PAIR = struct.Struct(">HI")
STOP = _LEN.pack(1) + b"S"


def _pairs(pairs: Iterable[tuple[str, Any]]) -> bytes:
    out = []
    for key, value in pairs:
        k = key.encode()
        v = value.encode() if isinstance(value, str) else bytes(value)
        out.append(_PAIR.pack(len(k), len(v)) + k + v)
    return b"".join(out)


def _unpairs(data: bytes) -> tuple[tuple[str, Any], ...]:
    pairs = []
    pos = 0
    while pos < len(data):
        klen, vlen = _PAIR.unpack_from(data, pos)
        pos += _PAIR.size
        key = data[pos : pos + klen].decode()
        value = data[pos + klen : pos + klen + vlen]
        pos += klen + vlen
        pairs.append((key, value if key.endswith("-bin") else value.decode(errors="replace")))
    return tuple(pairs)


def ready_frame(port: int) -> bytes:
    return _READY.pack(_READY.size - 4, b"R", port)


def error_frame(text: str) -> bytes:
    data = text.encode()
    return _LEN.pack(1 + len(data)) + b"E" + data


def call_frame(call: int, signal: int, body: bytes, metadata: Iterable[tuple[str, Any]], peer: str) -> bytes:
    p = peer.encode()
    m = _pairs(metadata)
    size = _CALL.size - 4 + len(p) + len(m) + len(body)
    return b"".join((_CALL.pack(size, b"C", call, signal, len(p), len(m)), p, m, body))


def answer_frame(
    call: int, code: int, message: str, reply: bytes, trailing: Iterable[tuple[str, Any]]
) -> bytes:
    msg = message.encode()
    t = _pairs(trailing) if trailing else b""
    size = _ANSWER.size - 4 + len(msg) + len(t) + len(reply)
    return b"".join((_ANSWER.pack(size, b"A", call, code, len(msg), len(t)), msg, t, reply))


class _MetaCache:
    """A client sends the same metadata with every call: the last few decoded sections are kept."""

    def __init__(self) -> None:
        self._seen: dict[bytes, tuple[tuple[str, Any], ...]] = {}

    def get(self, data: bytes) -> tuple[tuple[str, Any], ...]:
        pairs = self._seen.get(data)
        if pairs is None:
            if len(self._seen) >= 64:
                self._seen.clear()
            pairs = self._seen[data] = _unpairs(data)
        return pairs


def decode_to_proxy(mv: memoryview, pos: int, end: int, cache: _MetaCache) -> tuple[Any, ...]:
    """A front -> proxy frame's payload (mv[pos:end]): ("ready", port) | ("error", text) |
    (call, signal name, body, metadata pairs, peer)."""
    kind = mv[pos]
    if kind == 0x43:  # "C"
        _, _, call, sig, plen, mlen = _CALL.unpack_from(mv, pos - 4)
        p = pos + _CALL.size - 4
        peer = str(mv[p : p + plen], "utf-8")
        p += plen
        metadata = cache.get(bytes(mv[p : p + mlen]))
        return (call, SIGNAL_NAMES[sig], bytes(mv[p + mlen : end]), metadata, peer)
    if kind == 0x52:  # "R"
        return ("ready", _READY.unpack_from(mv, pos - 4)[2])
    return ("error", str(mv[pos + 1 : end], "utf-8", "replace"))


def decode_to_front(mv: memoryview, pos: int, end: int, cache: _MetaCache) -> tuple[Any, ...]:
    """A proxy -> front frame's payload: ("stop",) | (call, code, message, reply, trailing pairs)."""
    if mv[pos] == 0x53:  # "S"
        return ("stop",)
    _, _, call, code, mlen, tlen = _ANSWER.unpack_from(mv, pos - 4)
    p = pos + _ANSWER.size - 4
    message = str(mv[p : p + mlen], "utf-8", "replace")
    p += mlen
    trailing = _unpairs(bytes(mv[p : p + tlen])) if tlen else ()
    return (call, code, message, bytes(mv[p + tlen : end]), trailing)


class Frames(asyncio.Protocol):
    """Frames off a stream socket, decoded by `decode` (one of the two above): the ones that arrived
    together are handed to `on_messages` as a list (its answers can then go in one write); `on_eof`
    at the end."""

    def __init__(
        self,
        decode: Callable[[memoryview, int, int, _MetaCache], tuple[Any, ...]],
        on_messages: Callable[[list[tuple[Any, ...]]], None],
        on_eof: Callable[[], None],
    ) -> None:
        self.decode = decode
        self.on_messages = on_messages
        self.on_eof = on_eof
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._cache = _MetaCache()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, size = 0, len(buf)
        msgs = []
        decode, cache = self.decode, self._cache
        with memoryview(buf) as mv:
            while size - pos >= 5:
                (n,) = _LEN.unpack_from(mv, pos)
                if size - pos - 4 < n:
                    break
                msgs.append(decode(mv, pos + 4, pos + 4 + n, cache))
                pos += 4 + n
        if pos:
            del buf[:pos]
            self.on_messages(msgs)

    def eof_received(self) -> bool:
        self.on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_eof()


GO_BINARY = "labctl-grpc-front"  # built by `labctl install grpc-front` from grpcfront/
CHOICE_VAR = "LABCTL_GRPC_FRONT"  # "python" serves gRPC with this module even where the Go front is built
BIN_VAR = "LABCTL_GRPC_FRONT_BIN"  # a Go front elsewhere than the lab's cache


def go_front() -> str | None:
    """The Go front's path when it is installed and wanted, else None (this module serves then)."""
    import os
    from pathlib import Path

    from labctl.errors import LabError

    choice = os.environ.get(CHOICE_VAR, "").strip().lower()
    if choice not in ("", "auto", "go", "python"):
        raise LabError(
            f"{CHOICE_VAR}={choice!r} is not a gRPC front", f"set {CHOICE_VAR} to go, python or auto"
        )
    if choice == "python":
        return None
    named = os.environ.get(BIN_VAR)
    if named:
        path = Path(named).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LabError(
                f"{BIN_VAR} points to {path}, which is not an executable file",
                f"fix {BIN_VAR} or unset it to use the lab's cache",
            )
        return str(path)
    # labctl.install.paths.bin_dir(), without importing the installer on the proxy's start.
    cache = os.environ.get("LABCTL_CACHE_DIR")
    path = (Path(cache).expanduser() if cache else Path.home() / ".cache" / "labctl") / "bin" / GO_BINARY
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    if choice == "go":
        raise LabError(
            f"{CHOICE_VAR}=go but the Go gRPC front is not installed ({path})",
            f"run `labctl install grpc-front`, or unset {CHOICE_VAR}",
        )
    return None


def front_name(proc: Any) -> str:
    """ "go" or "python": which front a `launch` started."""
    return "python" if proc.args[0] == sys.executable else "go"


def launch(listen: str, max_bytes: int) -> tuple[Any, socket.socket]:
    """Start the front's process: (its Popen, the proxy's end of their socket). The Go front when it
    is installed (`go_front`), else this module. Kept light (no grpc, no asyncio loop) so the proxy
    can launch it before its own imports and set-up, which then overlap the front's start."""
    import os
    import subprocess
    from pathlib import Path

    go = go_front()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    if go is not None:
        cmd = [go]
    else:
        root = str(Path(__file__).resolve().parents[2])  # the child imports this very labctl
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "labctl.proxy.grpc_front"]
    cmd += ["--listen", listen, "--max-bytes", str(max_bytes), "--fd", str(theirs.fileno())]
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
                fut.set_result((0, grpc.StatusCode.UNAVAILABLE.value[0], "the proxy is stopping", b"", ()))
        pending.clear()
        done.set()

    transport, _ = await loop.create_unix_connection(
        lambda: Frames(decode_to_front, on_messages, on_eof), sock=sock
    )
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

    status = {code.value[0]: code for code in grpc.StatusCode}

    def handler(signal: int) -> Any:
        async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
            if done.is_set():
                await context.abort(grpc.StatusCode.UNAVAILABLE, "the proxy is stopping")
            call = next(ids)
            fut = pending[call] = loop.create_future()
            metadata = tuple((m[0], m[1]) for m in context.invocation_metadata() or ())
            relay(call_frame(call, signal, body, metadata, context.peer() or ""))
            _, code, message, reply, trailing = await fut
            if code:
                await context.abort(status[code], message, trailing_metadata=trailing)
            return reply

        return export

    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", max_bytes), ("grpc.so_reuseport", 0)]
    )
    for index, service in enumerate(SERVICES.values()):
        server.add_registered_method_handlers(
            service, {"Export": grpc.unary_unary_rpc_method_handler(handler(index))}
        )
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError:
        port = 0
    if not port:
        write(error_frame(f"cannot listen for OTLP gRPC on {listen}"))
        await asyncio.sleep(0)
        transport.close()
        return
    await server.start()
    write(ready_frame(port))
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
