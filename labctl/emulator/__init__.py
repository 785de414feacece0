"""The Claude Code telemetry emulator: same metrics, events, attributes and environment variables."""
