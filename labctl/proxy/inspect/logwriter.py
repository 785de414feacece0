"""The JSON Lines log written by a child process, on the machine's other core.

Encoding one JSON line per data point is a fifth of the proxy's work at high load, and nothing on the
request path needs those lines. So the proxy hands each payload's wire bytes, with the verdicts it
reached, to a child process (logwriter_child.py) that writes the lines and rotates the file. A clean
metrics payload is written from its bytes (jsonl_wire.py); any other is decoded again with an empty
contract, every violation taken from the proxy, so the lines say exactly what the proxy answered, even
across contract reloads.

Frames on the child's stdin: 4-byte big-endian length + pickle of one message:
    ("red", Redactor)                              redaction in force from now on
    ("p", signal, payload_id, bytes, {index: violations})
    ("l", bytes)                                   ready-made lines (alert transitions)
    ("s", token)                                   answer "s <token>" once everything before is written
The child answers "p <payload_id>" once the payloads up to that one are written (once per batch of
frames that arrived together). It exits at end of input, so it never outlives the proxy, even after a
kill -9.

If the child falls behind by more than `max_pending` bytes the proxy leaves payloads out of the log
(counted, said in its log, shown as labctl_proxy_inspect_log_dropped_total) rather than stall its clients
or grow without bound. If the child dies, the proxy says so and writes the log itself from then on.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("labctl.proxy.inspect")

_LEN = struct.Struct(">I")  # frame length, as the child reads it


class LogWriterProcess:
    """The proxy's side: queue payloads for the child, keep count of what was written or left out."""

    def __init__(self, path: Path, max_bytes: int, max_pending: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.max_pending = max_pending
        self.queued_bytes = 0  # written by the event loop thread only
        self.sent_bytes = 0  # written by the sender thread only
        self.dropped_payloads = 0
        self.dropped_records = 0
        self.written_through = 0  # the last payload id the child reported written
        self.failed = False
        self._last_drop_log = 0.0
        self._red: Any = None
        self._sync_seen = 0
        self._sync_next = 0
        self._cond = threading.Condition()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[3])  # the child imports this very labctl
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "labctl.proxy.inspect.logwriter_child",
                "--path",
                str(path),
                "--max-bytes",
                str(max_bytes),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self._sender = threading.Thread(target=self._send_loop, name="jsonl-writer-send", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="jsonl-writer-read", daemon=True)
        self._sender.start()
        self._reader.start()

    # --- what the inspector calls (event loop thread) ---------------------------------------------

    @property
    def pending(self) -> int:
        """Bytes queued for the child and not yet handed over."""
        return self.queued_bytes - self.sent_bytes

    def payload(
        self,
        signal_name: str,
        payload_id: int,
        raw: bytes,
        violations: dict[int, Any],
        red: Any,
        records: int,
    ) -> bool:
        """Queue one payload; False (and counted) when the child is too far behind or gone."""
        if self.failed:
            return False
        if self.pending > self.max_pending:
            self.dropped_payloads += 1
            self.dropped_records += records
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                log.warning(
                    "the inspection log writer is %d MiB behind: %d payloads (%d records) left out of "
                    "%s so far; the data itself is accepted and forwarded",
                    self.pending >> 20,
                    self.dropped_payloads,
                    self.dropped_records,
                    self.path,
                )
            return False
        if red is not self._red:
            self._red = red
            self._put(("red", red))
        self._put(("p", signal_name, payload_id, raw, violations))
        return True

    def lines(self, data: bytes) -> None:
        if data and not self.failed:
            self._put(("l", data))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is in the file (tests, shutdown); False on timeout."""
        if self.failed:
            return False
        with self._cond:
            self._sync_next += 1
            token = self._sync_next
        self._put(("s", token))
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._sync_seen < token and not self.failed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return self._sync_seen >= token

    def close(self, timeout: float = 10.0) -> None:
        """Let the child write what is queued, then end it (end of input)."""
        self._queue.put(None)
        self._sender.join(timeout)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the inspection log writer did not finish within %gs; stopping it", timeout)
            self.proc.kill()
            self.proc.wait()
        self._reader.join(1)

    # --- threads ------------------------------------------------------------------------------------

    def _put(self, msg: tuple[Any, ...]) -> None:
        frame = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        self.queued_bytes += len(frame)
        self._queue.put(frame)

    def _send_loop(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        while True:
            frame = self._queue.get()
            if frame is None:
                break
            try:
                stdin.write(_LEN.pack(len(frame)))
                stdin.write(frame)
                if self._queue.empty():
                    stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self._fail()
                break
            finally:
                self.sent_bytes += len(frame)
        try:
            stdin.close()
        except OSError:
            pass

    def _read_loop(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for line in stdout:
            kind, _, value = line.decode("ascii", "replace").strip().partition(" ")
            if kind == "p":
                self.written_through = int(value)
            elif kind == "s":
                with self._cond:
                    self._sync_seen = int(value)
                    self._cond.notify_all()
        code = self.proc.wait()
        if code != 0 and not self.failed:
            self._fail(code)

    def _fail(self, code: int | None = None) -> None:
        with self._cond:
            if self.failed:
                return
            # Said before `failed` is seen: whoever reads it next (the proxy, a test) finds the reason logged.
            log.error(
                "the inspection log writer (pid %d) stopped%s; the proxy writes %s itself from now on",
                self.proc.pid,
                f" with exit code {code}" if code is not None else "",
                self.path,
            )
            self.failed = True
            self._cond.notify_all()
