"""The SDK's own warnings, which emit shows as they happen, fit the terminal's width."""

from __future__ import annotations

import io
import logging

from labctl.emulator.exporters import RunStats, SdkLogWatcher

# What the gRPC exporter logs when it meets an OTLP/HTTP port (one 330-character line).
MESSAGE = (
    "Transient error StatusCode.UNAVAILABLE encountered while exporting metrics to 127.0.0.1:4318, "
    "retrying in 0.86s. Error details: failed to connect to all addresses; last error: INTERNAL: "
    "ipv4:127.0.0.1:4318: Failed parsing HTTP/2 (Expected SETTINGS frame as the first frame, got frame "
    "type 80) (Trying to connect an http1.x server (HTTP status 400))"
)


def test_a_long_sdk_warning_is_wrapped_under_its_logger_and_still_counted():
    stream = io.StringIO()
    stats = RunStats()
    watcher = SdkLogWatcher(stats, stream=stream, width=80)
    logger = "opentelemetry.exporter.otlp.proto.grpc.exporter"
    watcher.emit(logging.LogRecord(logger, logging.WARNING, __file__, 1, MESSAGE, None, None))
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"warning [{logger}]"
    assert all(len(line) <= 80 for line in lines), lines
    assert len(lines) >= 4 and all(line.startswith("  ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines[1:]) == MESSAGE  # every word kept, in order
    assert stats.sdk_messages and MESSAGE in stats.sdk_messages[0]


def test_a_warning_the_sdk_logs_after_the_run_is_not_printed_bare(capsys) -> None:
    # The retry a shutdown aborts is logged once the watcher is gone: Python's last-resort handler printed
    # it as a bare line in the middle of the summary.
    from labctl.emulator.exporters import install_sdk_log_watcher, remove_sdk_log_watcher

    remove_sdk_log_watcher(install_sdk_log_watcher(RunStats(), quiet=True))
    logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").warning(
        "Shutdown in progress, aborting retry."
    )
    assert "aborting retry" not in capsys.readouterr().err
