"""The logging proxy: OTLP in (gRPC, HTTP/protobuf, HTTP/JSON), contract check, inspection, lossless forwarding.

Transport lives here (config, codec, receivers, spool, forwarder, server); the contract is in
`labctl.contract` and everything a student looks at (records, sessions, alerts, page) in `inspect/`.
"""
