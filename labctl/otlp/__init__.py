"""OTLP itself, at the bottom of labctl: nothing here imports `labctl.contract` or `labctl.proxy`.

- `signals`: the three signals' protobuf types, service names, paths and item counts;
- `codec`: request decoding and response encoding for protobuf and OTLP/JSON, bounded gzip;
- `wire`: the protobuf field tags by name and a walk of a metrics request's bytes (metrics, points);
- `values`: AnyValue, times and numbers as plain JSON-ready values;
- `payload_io`: OTLP payload files (protobuf or JSON, plain or gzip, JSON Lines) for offline checks;
- `probe`: one empty gRPC export, to ask whether a receiver answers.
"""
