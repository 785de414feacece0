"""labctl: a classroom lab for building and debugging OpenTelemetry pipelines layer by layer."""

__version__ = "0.1.0"
