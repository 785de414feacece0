"""OTLP helpers shared by faults, checks and tests (the proxy has its own transport in labctl.proxy)."""
