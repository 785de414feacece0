"""The logging proxy: OTLP in (gRPC, HTTP/protobuf, HTTP/JSON), contract check, inspection, lossless forwarding.

Transport lives here (config, receivers, spool, forwarder, server); the OTLP wire format (signals,
codec, wire walk) is in `labctl.otlp`, the contract's rules in `labctl.contract` and everything a student looks at (records, sessions, alerts, page) in `inspect/`.
"""
