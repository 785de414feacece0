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
from pathlib import Path
from typing import BinaryIO

_LEN = struct.Struct(">I")


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = _LEN.unpack(head)
    data = stream.read(n)
    return data if len(data) == n else None


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
    try:
        while (frame := _read_frame(stdin)) is not None:
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
                    out.write_bytes(lines)
                except Exception:  # one payload the log cannot show must not end the log
                    logging.getLogger("labctl.proxy.inspect").exception(
                        "payload %d could not be written to the inspection log", payload_id
                    )
                stdout.write(b"p %d\n" % payload_id)
            elif msg[0] == "l":
                out.write_bytes(msg[1])
            elif msg[0] == "red":
                red = msg[1]
            elif msg[0] == "s":
                stdout.write(b"s %d\n" % msg[1])
            stdout.flush()
    finally:
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
