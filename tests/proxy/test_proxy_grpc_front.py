"""The gRPC fronts (labctl/proxy/grpc_front.py, and the Go one in labctl/proxy/grpcfront/): a child
process serves gRPC, the proxy decides. Each test runs with both fronts (the `grpc_front` fixture).

What clients see through a front: status codes, partial success, gzip, the size limit, auth, the
metadata and peer in the payload records, a port in use; the spool's RetryInfo is in
test_proxy_responses.py. And the process itself: it goes when the proxy goes, and a front that dies
does not leave gRPC clients without an answer.
"""

from __future__ import annotations

import gzip
import json
import signal
import urllib.request

import grpc
import psutil
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from proxy_harness import make_config, wait_for
from proxy_payloads import events, token_usage
from proxy_process import ProxyProcess

from labctl.errors import LabError
from labctl.proxy.grpc_front import front_name

METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def _front_of(pid: int) -> psutil.Process:
    fronts = [
        p
        for p in psutil.Process(pid).children()
        if "grpc_front" in (c := " ".join(p.cmdline())) or "grpc-front" in c
    ]
    assert len(fronts) == 1, fronts
    return fronts[0]


def _export(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary(METHOD)(token_usage(3).SerializeToString(), timeout=5)
        except grpc.RpcError:
            return False
    return True


def _code(call, body: bytes, **kw) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call(body, timeout=10, **kw)
    return err.value.code()


@pytest.mark.integration
def test_what_clients_see_through_the_front(start_proxy, grpc_front):
    proxy = start_proxy(
        auth={"bearer_token": "s3cret"}, contract={"mode": "enforce"}, limits={"max_request_bytes": "20KiB"}
    )
    front = proxy.server._front
    assert front is not None and front.proc is not None and front_name(front.proc) == grpc_front
    front.proc.send_signal(signal.SIGINT)  # Ctrl-C reaches the whole group: the proxy decides, not the front
    token = (("authorization", "Bearer s3cret"),)
    with grpc.insecure_channel(proxy.grpc) as channel:
        metrics, logs = channel.unary_unary(METHOD), channel.unary_unary(LOGS)
        assert _code(metrics, token_usage(3).SerializeToString()) == grpc.StatusCode.UNAUTHENTICATED
        # Partial success, gzip and binary metadata pass through the front both ways.
        meta = (*token, ("x-tenant", "a"), ("x-blob-bin", b"\x00\xff"))
        reply = metrics(
            token_usage(6, bad=4).SerializeToString(),
            timeout=10,
            metadata=meta,
            compression=grpc.Compression.Gzip,
        )
        assert ExportMetricsServiceResponse.FromString(reply).partial_success.rejected_data_points == 4
        assert logs(events(3).SerializeToString(), timeout=10, metadata=token) == b""
        with pytest.raises(grpc.RpcError) as err:
            metrics(b"\x0a\xff\xff", timeout=10, metadata=token)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid protobuf" in err.value.details()
        # Over the limit as sent, and once inflated (gzip shrinks the repeated points to well under it).
        big = token_usage(200).SerializeToString()
        assert len(big) > 20 * 1024 > len(gzip.compress(big))
        assert _code(metrics, big, metadata=token) == grpc.StatusCode.RESOURCE_EXHAUSTED
        gz = grpc.Compression.Gzip
        assert _code(metrics, big, metadata=token, compression=gz) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not ExportLogsServiceResponse.FromString(logs(b"", timeout=10, metadata=token)).HasField(
            "partial_success"
        )
    c = proxy.stats()["counters"]
    assert c["accepted"] == {"metrics": 6, "logs": 3, "traces": 0}
    assert c["requests"]["metrics"] == {"unauthenticated": 1, "partial": 1, "bad_protobuf": 1}
    request = urllib.request.Request(
        proxy.admin + "/api/payloads/1", headers={"Authorization": "Bearer s3cret"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        record = json.loads(resp.read())
    assert record["peer"].startswith("ipv4:127.0.0.1:") and record["peer"].rsplit(":", 1)[1].isdigit()
    assert record["headers"]["x-tenant"] == "a" and record["headers"]["authorization"] == "[REDACTED]"
    assert record["headers"]["user-agent"].startswith("grpc-python/")
    assert not any(k.startswith((":", "grpc-")) or k == "content-type" for k in record["headers"])
    # A second proxy on the same gRPC port: the front's error becomes the proxy's clear one.
    with pytest.raises(LabError) as taken:
        start_proxy(listen={"otlp_grpc": proxy.grpc})
    assert "cannot listen" in taken.value.message and "LAB_PROXY_OTLP" in (taken.value.hint or "")
    # Asked to stop, the front finishes and exits by itself (not killed after the proxy's timeout).
    proxy.stop()
    assert front.proc.returncode == 0


@pytest.mark.integration
def test_a_killed_front_is_replaced_by_grpc_in_the_proxy_itself(start_proxy, grpc_front):
    proxy = start_proxy()
    assert _export(proxy.grpc)
    front = proxy.server._front
    assert front is not None and front.proc is not None and front_name(front.proc) == grpc_front
    front.proc.kill()
    wait_for(lambda: _export(proxy.grpc), what="gRPC answered again after its front was killed")
    assert proxy.server._front is None  # served in-process now
    assert proxy.stats()["counters"]["accepted"]["metrics"] >= 6


@pytest.mark.integration
def test_the_front_ends_with_a_proxy_killed_with_sigkill(tmp_path, grpc_front):
    proxy = ProxyProcess(
        make_config(tmp_path / "data"), tmp_path, env={"LABCTL_GRPC_FRONT": grpc_front}
    ).start()
    try:
        assert proxy.proc is not None
        front = _front_of(proxy.proc.pid)
        assert ("grpc-front" in " ".join(front.cmdline())) == (grpc_front == "go")
        assert _export(proxy.raw["listen"]["otlp_grpc"])
        proxy.kill(signal.SIGKILL)
        wait_for(lambda: not front.is_running() or front.status() == psutil.STATUS_ZOMBIE, 10, "front gone")
    finally:
        proxy.stop()


def _read_frame(sock) -> bytes:
    head = b""
    while len(head) < 4:
        head += sock.recv(4 - len(head))
    size, data = int.from_bytes(head, "big"), b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


@pytest.mark.integration
def test_stop_lets_the_call_in_flight_finish_and_end_of_input_ends_the_front(grpc_front):
    # The front alone, driven over its socket the way grpc_relay.py does: the frames of its docstring.
    from concurrent.futures import ThreadPoolExecutor

    from labctl.proxy.grpc_front import STOP, answer_frame, launch
    from labctl.state import free_port

    for ending in ("stop", "end of input"):
        proc, sock = launch(f"127.0.0.1:{free_port()}", 1 << 20)
        try:
            ready = _read_frame(sock)
            assert ready[:1] == b"R"
            target = f"127.0.0.1:{int.from_bytes(ready[1:3], 'big')}"
            with ThreadPoolExecutor(1) as pool, grpc.insecure_channel(target) as channel:
                call = pool.submit(
                    channel.unary_unary(METHOD), b"\x0a\x00", timeout=10, metadata=(("x-k", "v"),)
                )
                frame = _read_frame(sock)
                assert frame[:1] == b"C" and b"x-k" in frame and frame.endswith(b"\x0a\x00")
                if ending == "stop":
                    sock.sendall(STOP)  # then the answer, while the front is stopping: it still goes out
                    sock.sendall(answer_frame(int.from_bytes(frame[1:5], "big"), 0, "", b"\x0a\x00", ()))
                    assert call.result(10) == b"\x0a\x00"
                else:
                    sock.close()
                    with pytest.raises(grpc.RpcError) as err:
                        call.result(10)
                    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert proc.wait(10) == 0
        finally:
            sock.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
