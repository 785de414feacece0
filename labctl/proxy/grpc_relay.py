"""The proxy's side of the gRPC front (grpc_front.py): start it, answer the calls it relays, stop it.

Each relayed call is answered at once on the event loop, in the order it came, by
GrpcReceiver.answer: the same decision the in-process server makes, so clients see the same status
codes, partial successes and RetryInfo either way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
from collections.abc import Callable
from typing import Any

import grpc

from labctl.errors import LabError
from labctl.otlp.signals import SIGNALS
from labctl.proxy.grpc_front import STOP, Frames, answer_frame, decode_to_proxy, front_name, launch
from labctl.proxy.grpc_receiver import GrpcReceiver

log = logging.getLogger("labctl.proxy")
# The receiver answers with status code names ("" is OK); the frames to the front carry the numbers.
_CODES = {"": 0, **{code.name: code.value[0] for code in grpc.StatusCode}}


class GrpcFront:
    """`spawn` first (its process starts while the proxy sets up the rest), then `ready`."""

    def __init__(self, on_lost: Callable[[], None] | None = None) -> None:
        self.receiver: GrpcReceiver | None = None
        self.on_lost = on_lost  # called when the front ends by itself (not by `stop`)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.listen = ""
        self._transport: asyncio.Transport | None = None
        self._started: asyncio.Future[Any] | None = None
        self._closed = False
        self._stopping = False

    async def spawn(
        self, listen: str, max_bytes: int, launched: tuple[Any, socket.socket] | None = None
    ) -> None:
        """Start the front on `listen` (or take one `grpc_front.launch` started already)."""
        loop = asyncio.get_running_loop()
        self.listen = listen
        self.proc, ours = launched if launched is not None else launch(listen, max_bytes)
        self._started = loop.create_future()
        self._transport, _ = await loop.create_unix_connection(
            lambda: Frames(decode_to_proxy, self._on_messages, self._on_eof), sock=ours
        )

    async def ready(self, receiver: GrpcReceiver, timeout: float = 60.0) -> int:
        """Wait until the front listens; its bound port. LabError when it cannot listen there."""
        self.receiver = receiver
        assert self._started is not None
        try:
            kind, value = await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except TimeoutError:
            raise LabError(
                f"the OTLP gRPC receiver did not start within {timeout:g}s",
                "look at the proxy's log for the reason, then start it again",
            ) from None
        if kind != "ready":
            raise LabError(
                f"{value}: the port is in use or the address is wrong",
                "stop what uses the port (`labctl down`?) or set LAB_PROXY_OTLP_GRPC_LISTEN",
            )
        self.port = int(value)
        if self.proc is not None:
            log.info("OTLP gRPC is served by the %s front (pid %d)", front_name(self.proc), self.proc.pid)
        return self.port

    def _on_messages(self, msgs: list[Any]) -> None:
        """Answer the calls that arrived together, in order, in one write."""
        started = self._started
        if started is not None and not started.done():
            started.set_result(msgs.pop(0))  # ("ready", port) or ("error", text)
        out = []
        receiver = self.receiver
        for call, name, body, metadata, peer in msgs:
            try:
                if receiver is None:  # a call between the front's start and the proxy's: clients retry
                    answer: tuple[Any, ...] = ("UNAVAILABLE", "the proxy is starting", b"", ())
                else:
                    answer = receiver.answer(SIGNALS[name], body, metadata, peer)
            except Exception as exc:  # a bug must cost one call, not the receiver
                log.exception("answering a gRPC %s export failed", name)
                answer = ("UNKNOWN", f"Unexpected {type(exc).__name__}: {exc}", b"", ())
            code, message, reply, trailing = answer
            out.append(answer_frame(call, _CODES[code], message, reply, trailing))
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def _on_eof(self) -> None:
        if self._closed:
            return
        self._closed = True
        started = self._started
        if started is not None and not started.done():
            started.set_result(("error", f"cannot start the OTLP gRPC receiver on {self.listen}"))
        elif not self._stopping and self.on_lost is not None:
            self.on_lost()

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the front finish the calls in flight (its 1 s grace) and end; killed after `timeout`."""
        self._stopping = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(STOP)
        proc = self.proc
        if proc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
            except TimeoutError:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if self._transport is not None:
            self._transport.close()
