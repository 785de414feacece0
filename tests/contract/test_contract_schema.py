"""The JSON Schema of payload records validates the records the proxy really writes."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from labctl.contract import default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, sample_events, sample_metrics, session_attrs
from labctl.contract.schema import record_schema


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def cc():
    return load_contract(default_contract_path())


def test_real_records_validate_against_plain_and_contract_schema(cc) -> None:
    records = cc.evaluate("metrics", sample_metrics()).records + cc.evaluate("logs", sample_events()).records
    bad = cc.evaluate(
        "metrics",
        metrics_request(
            [Point("claude_code.token.usage", float("nan"), {**session_attrs(), "model": "m", "type": "x"})]
        ),
    ).records
    records += bad
    # records go through JSON exactly as in the JSONL log
    records = json.loads(json.dumps(records))
    for schema in (record_schema(None), record_schema(cc)):
        v = validator(schema)
        for rec in records:
            errors = list(v.iter_errors(rec))
            assert not errors, (rec["name"], [e.message for e in errors])


def test_contract_schema_rejects_a_violating_record_marked_ok(cc) -> None:
    rec = cc.evaluate(
        "metrics",
        metrics_request(
            [Point("claude_code.token.usage", 5, {**session_attrs(), "model": "m", "type": "bogus"})]
        ),
    ).records[0]
    assert rec["verdict"] == "violation"
    forged = json.loads(json.dumps(rec))
    forged["verdict"], forged["violations"] = "ok", []
    v = validator(record_schema(cc))
    assert not v.is_valid(forged)
    assert validator(record_schema(None)).is_valid(forged)  # the plain shape does not know the contract
    inconsistent = copy.deepcopy(json.loads(json.dumps(rec)))
    inconsistent["violations"] = []
    assert not validator(record_schema(None)).is_valid(inconsistent)  # "violation" needs violations


@pytest.mark.integration
def test_cli_schema_is_valid_json_schema(labctl_run) -> None:
    r = labctl_run("contract", "schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"].endswith("(contract claude-code)")
