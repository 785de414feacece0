"""Contract hot reload on file change (same connections keep working), and no secret in any output."""

from __future__ import annotations

import logging
import shutil

import pytest
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from proxy_harness import CONTRACT, wait_for
from proxy_payloads import token_usage

PB = {"Content-Type": "application/x-protobuf"}


@pytest.mark.integration
def test_contract_edit_is_picked_up_without_dropping_the_connection(start_proxy, tmp_path):
    contract = tmp_path / "contract.yaml"
    shutil.copy(CONTRACT, contract)
    proxy = start_proxy(contract={"path": str(contract), "mode": "enforce"})
    body = token_usage(4, bad=2).SerializeToString()
    with requests.Session() as s:  # one keep-alive connection throughout

        def rejected() -> int:
            r = s.post(proxy.http + "/v1/metrics", data=body, headers=PB, timeout=10)
            assert r.status_code == 200
            return ExportMetricsServiceResponse.FromString(r.content).partial_success.rejected_data_points

        assert rejected() == 2
        text = CONTRACT.read_text()
        contract.write_text("this: [is not a contract\n")
        wait_for(
            lambda: proxy.stats()["contract"]["last_reload_error"], what="the broken edit to be reported"
        )
        assert rejected() == 2 and proxy.stats()["contract"]["version"] == 1  # old contract kept
        contract.write_text(
            text.replace(
                "values: [input, output, cacheRead, cacheCreation]",
                "values: [input, output, cacheRead, cacheCreation, bogus-type]",
            )
        )
        wait_for(lambda: proxy.stats()["contract"]["version"] == 2, what="the fixed contract to load")
        assert rejected() == 0
        assert proxy.stats()["contract"]["last_reload_error"] == ""


@pytest.mark.integration
def test_tokens_never_appear_in_logs_stats_or_errors(start_proxy, caplog):
    caplog.set_level(logging.DEBUG)
    inbound, outbound = "in-TOKEN-7f3a9", "out-TOKEN-c41b2"
    proxy = start_proxy(
        auth={"bearer_token": inbound},
        upstream={
            "endpoint": "http://user:pw-SECRET@127.0.0.1:9",
            "protocol": "http/protobuf",
            "headers": f"authorization=Bearer%20{outbound}",
            "retry": {"initial_interval": "50ms", "max_interval": "100ms"},
        },
    )
    outputs = []
    for auth in (f"Bearer {inbound}", "Bearer wrong-" + inbound):
        r = requests.post(
            proxy.http + "/v1/metrics",
            data=token_usage(2).SerializeToString(),
            timeout=10,
            headers={**PB, "Authorization": auth},
        )
        outputs.append(r.text)
    wait_for(lambda: proxy.stats()["counters"]["retries"]["metrics"], what="a failed upstream attempt")
    outputs.append(str(proxy.stats()))
    outputs.append(requests.get(proxy.admin + "/readyz", timeout=5).text)
    admin_auth = {"Authorization": f"Bearer {inbound}"}  # the admin plane demands the token too
    for path in ("/api/payloads", "/api/export", "/metrics", "/api/overview"):
        outputs.append(requests.get(proxy.admin + path, timeout=5, headers=admin_auth).text)
        outputs.append(
            requests.get(proxy.admin + path, timeout=5).text
        )  # the refusal must not leak it either
    payloads = requests.get(proxy.admin + "/api/payloads", timeout=5, headers=admin_auth).text
    assert "authorization" in payloads.lower()  # the header is shown as present, its value redacted
    outputs.append(caplog.text)
    jsonl = proxy.cfg.data_dir / "inspect" / "records.jsonl"
    assert proxy.server.inspector.flush_log()
    assert "token.usage" in jsonl.read_text()  # the log was written: its absence of secrets means something
    outputs.append(jsonl.read_text())
    for text in outputs:
        for secret in (inbound, outbound, "pw-SECRET"):
            assert secret not in text
