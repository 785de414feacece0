"""The admin API answers as its OpenAPI document says (schemathesis against a live proxy with data)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import requests.adapters
import schemathesis
from fuzz_budget import examples
from hypothesis import HealthCheck, given, settings
from inspect_harness import ProxyProc

from labctl.contract.samples import Point, metrics_request, sample_events, sample_metrics, session_attrs
from labctl.proxy.inspect.api import openapi_document
from labctl.state import find_free_ports

# The live proxy of these tests is a real `labctl proxy serve` process.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProc]:
    # An upstream where nothing listens: data waits in the spool, and PUT/DELETE /api/upstream have a
    # forwarder to retarget (generated endpoints are only ever dialled by the proxy, never answered).
    proxy = ProxyProc(
        Path(tmp_path_factory.mktemp("openapi")),
        alerts=[{"name": "cost", "kind": "session_cost", "threshold": 0.001}],
        upstream={"endpoint": f"http://127.0.0.1:{find_free_ports(1)[0]}", "timeout": "1s"},
    )
    try:
        proxy.start()
        assert proxy.send("metrics", sample_metrics()).status_code == 200
        assert proxy.send("logs", sample_events()).status_code == 200
        bad = metrics_request([Point("claude_code.token.usage", -1, {**session_attrs(), "type": "x"})])
        assert proxy.send("metrics", bad).status_code == 200
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def admin_schema(live_proxy: ProxyProc):
    # the document as the live server serves it (from_url would skip the document's own operation)
    served = requests.get(live_proxy.admin + "/api/openapi.json", timeout=5).json()
    # Generated upstreams are dialled by the proxy's forwarder: on loopback only (any host the document's
    # pattern allows had it resolve names and dial outside this machine).
    endpoint = served["components"]["schemas"]["UpstreamChange"]["properties"]["endpoint"]
    assert endpoint["pattern"] == "^https?://[A-Za-z0-9.-]+:[0-9]{1,4}$", endpoint  # the narrowing below fits
    endpoint["pattern"] = r"^https?://127\.0\.0\.1:[0-9]{1,4}$"
    schema = schemathesis.openapi.from_dict(served)
    schema.config.update(base_url=live_proxy.admin)
    return schema


class _PlainAdapter(requests.adapters.BaseAdapter):
    """requests' HTTPAdapter behind a BaseAdapter: schemathesis' connection bookkeeping inspects HTTPAdapter
    pools, which urllib3-future (installed alongside grafana-client's niquests) lays out differently."""

    def __init__(self) -> None:
        super().__init__()
        self._inner = requests.adapters.HTTPAdapter()

    def send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._inner.send(*args, **kwargs)

    def close(self) -> None:
        self._inner.close()


# Generated calls of these would end the proxy under test mid-run: tests/proxy/test_proxy_restart.py calls
# POST /api/restart on a proxy of its own and checks the documented answer.
ENDS_THE_PROXY = {"POST /api/restart"}


def test_every_operation_conforms(admin_schema) -> None:
    """Each operation with generated parameters (valid ones and, for queries, edge values): status codes,
    content types and bodies must match the document. (schemathesis' pytest plugin does not support
    this pytest version, so its strategies are driven by hypothesis directly.)"""
    checked = []
    session = requests.Session()
    session.adapters.clear()
    session.mount("http://", _PlainAdapter())
    for result in admin_schema.get_all_operations():
        operation = result.ok()
        if operation.label in ENDS_THE_PROXY:
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case) -> None:
            case.call_and_validate(session=session)

        run()
        checked.append(operation.label)
    documented = {
        f"{method.upper()} {path}" for path, ops in openapi_document()["paths"].items() for method in ops
    }
    assert documented - set(checked) == ENDS_THE_PROXY


def test_served_document_is_the_packaged_one(live_proxy: ProxyProc) -> None:
    served = requests.get(live_proxy.admin + "/api/openapi.json", timeout=5).json()
    assert served == openapi_document()
    packaged = Path(__file__).resolve().parents[2] / "labctl" / "proxy" / "inspect" / "openapi.json"
    assert json.loads(packaged.read_text()) == served
    assert {
        "/api/payloads",
        "/api/violations",
        "/api/sessions",
        "/api/alerts",
        "/api/contract",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/stats",
    } <= set(served["paths"])


def test_upstream_changes_at_runtime_and_back_exactly(live_proxy: ProxyProc) -> None:
    """PUT /api/upstream retargets the running proxy (no restart: counters and uptime go on); DELETE
    restores the configured upstream exactly; bad bodies are 400 with the reason."""
    api = live_proxy.admin + "/api/upstream"
    configured = requests.delete(api, timeout=5).json()  # whatever the generated cases left: back to config
    assert configured["configured"] is True
    before = requests.get(live_proxy.admin + "/api/stats", timeout=5).json()
    other = f"http://127.0.0.1:{find_free_ports(1)[0]}"
    put = requests.put(
        api,
        json={"endpoint": other, "protocol": "http/protobuf", "headers": "authorization=Bearer%20secret-x"},
        timeout=5,
    )
    assert put.status_code == 200, put.text
    assert put.json() == {
        "endpoint": other,
        "protocol": "http/protobuf",
        "header_names": ["authorization"],
        "configured": False,
    }
    assert "secret-x" not in put.text
    after = requests.get(live_proxy.admin + "/api/stats", timeout=5).json()
    assert after["upstream"]["endpoint"] == other and after["upstream"]["protocol"] == "http/protobuf"
    assert after["upstream"]["configured"] is False
    assert after["uptime_s"] >= before["uptime_s"]  # the same process: nothing restarted
    assert after["counters"]["received"] == before["counters"]["received"]  # counters kept
    for body, why in (
        ([1], "must be a mapping"),
        ({"endpoint": "grpc://x:1"}, "not an http(s) URL"),
        ({"protocol": "smtp"}, "not one of"),
        ({"port": 1}, "unknown key"),
    ):
        bad = requests.put(api, json=body, timeout=5)
        assert bad.status_code == 400 and why in bad.json()["error"], (body, bad.text)
    back = requests.delete(api, timeout=5).json()
    assert back == configured
    stats = requests.get(live_proxy.admin + "/api/stats", timeout=5).json()
    assert stats["upstream"]["endpoint"] == configured["endpoint"] and stats["upstream"]["configured"] is True
