"""The example files the guides hand to students behave as the guides say."""

from __future__ import annotations

import docsmd
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from labctl.contract import default_contract_path, load_contract

EXAMPLE = docsmd.REPO / "lab" / "modules" / "module-1" / "token-usage.json"


def _evaluate(text: str):
    request = ExportMetricsServiceRequest()
    json_format.Parse(text, request)
    return load_contract(default_contract_path()).evaluate("metrics", request)


def test_module_1_example_payload_follows_the_contract():
    ev = _evaluate(EXAMPLE.read_text())
    assert ev.rejected == 0
    assert [r["verdict"] for r in ev.records] == ["ok", "ok"]


def test_module_1_broken_copy_is_caught_with_its_path():
    # Exercise 5: `sed -i 's/"input"/"prompt"/'` on a copy must give a violation naming the attribute.
    ev = _evaluate(EXAMPLE.read_text().replace('"input"', '"prompt"'))
    assert ev.rejected == 1
    bad = [r for r in ev.records if r["verdict"] == "violation"]
    assert len(bad) == 1
    assert any("type" in v["path"] for v in bad[0]["violations"]), bad[0]["violations"]
