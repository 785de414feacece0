"""One empty OTLP metrics export over gRPC: does a receiver answer, and does it accept these headers?"""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc


def grpc_export(
    target: str, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[grpc.StatusCode, str]:
    """(status code, details) the receiver at HOST:PORT answered; an empty request changes no data."""
    with grpc.insecure_channel(target) as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        try:
            stub.Export(
                metrics_service_pb2.ExportMetricsServiceRequest(),
                timeout=timeout,
                metadata=list((headers or {}).items()),
            )
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""
