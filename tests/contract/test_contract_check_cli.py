"""`labctl contract check` on real protobuf and OTLP/JSON payload files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from labctl.contract.samples import Point, logs_request, metrics_request, sample_metrics, session_attrs
from labctl.otlp.codec import to_otlp_json


def write_json(path: Path, msg) -> Path:
    path.write_text(json.dumps(to_otlp_json(msg)))
    return path


def bad_metrics():
    return metrics_request(
        [
            Point("claude_code.token.usage", 10, {**session_attrs(), "model": "m", "type": "input"}),
            Point("claude_code.token.usage", 5, {**session_attrs(), "model": "m", "type": "tokens"}),
            Point("claude_code.cost.usage", -0.5, {**session_attrs(), "model": "m"}),
        ]
    )


@pytest.mark.integration
def test_conforming_protobuf_and_json_pass(labctl_run, tmp_path: Path) -> None:
    pb = tmp_path / "ok.pb"
    pb.write_bytes(sample_metrics().SerializeToString())
    r = labctl_run("contract", "check", str(pb))
    assert r.returncode == 0, r.stderr
    assert "all 12 data points conform to contract 'claude-code'" in r.stdout
    js = write_json(tmp_path / "ok.json", sample_metrics())
    r = labctl_run("contract", "check", str(js), "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) | {"payload": "x"} == {
        "payload": "x",
        "contract": "claude-code",
        "signal": "metrics",
        "items": 12,
        "violating_items": 0,
        "violations": [],
    }


@pytest.mark.integration
def test_violations_are_printed_with_their_paths_and_exit_1(labctl_run, tmp_path: Path) -> None:
    pb = tmp_path / "bad.pb"
    pb.write_bytes(bad_metrics().SerializeToString())
    for path in (pb, write_json(tmp_path / "bad.json", bad_metrics())):
        r = labctl_run("contract", "check", str(path))
        assert r.returncode == 1
        assert (
            "✗ attribute_value at\n  resourceMetrics[0].scopeMetrics[0].metrics[0](claude_code.token.usage)"
            ".sum.dataPoints[1].attributes[type]"
        ) in r.stdout
        assert (
            "✗ negative_counter at\n  resourceMetrics[0].scopeMetrics[0].metrics[1](claude_code.cost.usage)"
            ".sum.dataPoints[0].asDouble"
        ) in r.stdout
        assert "2 of 3 data points violate contract 'claude-code'" in r.stderr
    r = labctl_run("contract", "check", str(pb), "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 1 and data["violating_items"] == 2
    assert sorted(v["rule"] for v in data["violations"]) == [
        "attribute_value",
        "negative_counter",
        "value_range",
    ]


@pytest.mark.integration
def test_stdin_gzip_and_logs(labctl_run, tmp_path: Path) -> None:
    req = logs_request(
        [
            (
                "claude_code.tool_decision",
                {**session_attrs(), "tool_name": "Edit", "decision": "nope", "source": "config"},
            )
        ]
    )
    r = labctl_run("contract", "check", "-", stdin=gzip.compress(req.SerializeToString()))
    assert r.returncode == 1
    assert "logRecords[0].attributes[decision]" in r.stdout and "log records violate" in r.stderr


@pytest.mark.integration
def test_seed_contract_and_bad_inputs(labctl_run, tmp_path: Path) -> None:
    js = write_json(tmp_path / "ok.json", sample_metrics())
    seed = Path(__file__).resolve().parents[2] / "lab" / "contracts" / "claude-code-seed.yaml"
    r = labctl_run("contract", "check", "--contract", str(seed), str(js))
    assert r.returncode == 0, r.stdout + r.stderr
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    r = labctl_run("contract", "check", str(junk))
    assert r.returncode == 2 and "without resourceMetrics" in r.stderr
    r = labctl_run("contract", "check", str(tmp_path / "missing.pb"))
    assert r.returncode == 2 and "does not exist" in r.stderr


@pytest.mark.integration
def test_json_lines_of_requests(labctl_run, tmp_path: Path) -> None:
    """The Collector's file exporter writes one OTLP/JSON request per line: each is checked."""
    lines = tmp_path / "export.jsonl"
    lines.write_text("\n".join(json.dumps(to_otlp_json(m)) for m in (sample_metrics(), bad_metrics())) + "\n")
    r = labctl_run("contract", "check", str(lines))
    assert r.returncode == 1
    assert "payload[1].resourceMetrics[0].scopeMetrics[0].metrics[0](claude_code.token.usage)" in r.stdout
    assert "payload[0]." not in r.stdout
    assert "2 of 15 data points" in r.stderr and "(2 payloads)" in r.stderr
