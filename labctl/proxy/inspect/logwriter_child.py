"""The child process that writes the proxy's JSON Lines log (see logwriter.py for the protocol).

python -m labctl.proxy.inspect.logwriter_child --path records.jsonl --max-bytes 67108864
"""

from __future__ import annotations

import argparse
import logging
import pickle
import signal
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_LEN = struct.Struct(">I")


def _batches(stream: BinaryIO) -> Iterator[list[bytes]]:
    """The frames on `stream`, in the batches that arrived together: the child writes a batch's lines
    in one write and answers once for it, so a busy proxy's reader thread wakes once per batch, not
    once per payload. Ends at end of input (a frame cut short is dropped, as before)."""
    read = getattr(stream, "read1", stream.read)
    buf = b""
    while chunk := read(1 << 20):
        buf += chunk
        frames: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if len(buf) - pos - 4 < n:
                break
            frames.append(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
        buf = buf[pos:]
        if frames:
            yield frames


def run_child(path: Path, max_bytes: int, stdin: BinaryIO, stdout: BinaryIO) -> None:
    from labctl.contract import Contract, ContractSpec
    from labctl.otlp.signals import SIGNALS
    from labctl.proxy.inspect.jsonl_fast import JsonlEncoder
    from labctl.proxy.inspect.jsonl_wire import WireLines
    from labctl.proxy.inspect.store import JsonlLog
    from labctl.redact import Redactor

    # No rules: the child only decodes; every verdict comes from the proxy.
    decoder = Contract(ContractSpec(name="log", unknown_metrics="allow", unknown_events="allow"))
    encoder = JsonlEncoder()
    wire = WireLines(encoder)
    out = JsonlLog(path, max_bytes)
    red = Redactor()
    pending: list[bytes] = []  # lines of the batch so far, written before any answer
    written = 0  # the last payload id to answer for

    def write_out() -> None:
        nonlocal written
        if pending:
            out.write_bytes(b"".join(pending))
            pending.clear()
        if written:
            stdout.write(b"p %d\n" % written)
            written = 0

    try:
        for frames in _batches(stdin):
            for frame in frames:
                msg = pickle.loads(frame)
                if msg[0] == "p":
                    _, signal_name, payload_id, raw, violations = msg
                    try:
                        # A clean metrics payload is written from its bytes; any other is evaluated again.
                        lines = (
                            wire.encode(raw, red, payload_id)
                            if signal_name == "metrics" and not violations
                            else None
                        )
                        if lines is None:
                            request = SIGNALS[signal_name].request_type.FromString(raw)
                            ev = decoder.evaluate(signal_name, request, raw)
                            ev.with_violations(violations)
                            lines = encoder.encode(ev, red, payload_id, {})
                        pending.append(lines)
                    except Exception:  # one payload the log cannot show must not end the log
                        logging.getLogger("labctl.proxy.inspect").exception(
                            "payload %d could not be written to the inspection log", payload_id
                        )
                    written = payload_id
                elif msg[0] == "l":
                    pending.append(msg[1])
                elif msg[0] == "red":
                    red = msg[1]
                elif msg[0] == "s":
                    write_out()
                    stdout.write(b"s %d\n" % msg[1])
            write_out()
            stdout.flush()
    finally:
        write_out()
        out.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m labctl.proxy.inspect.logwriter_child",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--path", required=True, type=Path)
    ap.add_argument("--max-bytes", required=True, type=int)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s jsonl-writer %(levelname)s %(message)s")
    # Ctrl-C or a stop signal sent to the proxy's whole process group must not cut the log short: the
    # child ends when its input does, which happens when the proxy closes it or dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    run_child(args.path, args.max_bytes, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
