"""The inspector's bounded memory and log: ring buffers, records per payload, JSONL rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.contract import default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, sample_metrics, session_attrs
from labctl.proxy.inspect.store import JsonlLog

# The "process" writer starts the JSONL writer process: that case belongs to the integration lane.
WRITERS = ["inline", pytest.param("process", marks=pytest.mark.integration)]


@pytest.mark.parametrize("writer", WRITERS)
def test_ring_buffers_are_bounded_and_polling_by_seq_works(
    tmp_path: Path, make_inspector, writer: str
) -> None:
    cc = load_contract(default_contract_path())
    ins = make_inspector(
        {
            "inspect": {"payloads": 3, "records_per_payload": 5, "violations": 4, "console": "off"},
            "log": {"writer": writer},
        },
        tmp_path,
    )
    for _ in range(5):
        ins.observe("metrics", cc.evaluate("metrics", sample_metrics()), {"protocol": "grpc"})
    assert [p["seq"] for p in ins.store.payloads] == [3, 4, 5]
    # records are built when a payload is opened (the hot path keeps the points, not 200 dicts)
    assert all(
        len(ins.store.get(p["seq"])["records"]) == 5 and p["records_truncated"] == 7
        for p in ins.store.payloads
    )
    assert [p["seq"] for p in ins.store.list(after=3)] == [5, 4]
    assert ins.store.get(1) is None and ins.store.get(5)["items"] == 12
    bad = metrics_request(
        [Point("claude_code.token.usage", -1, {**session_attrs(), "model": "m", "type": "x"})] * 3
    )
    ins.observe("metrics", cc.evaluate("metrics", bad))
    assert len(ins.store.violations) == 4  # 3 points x 3 violations, newest 4 kept
    assert ins.store.last_violation_seq == 9
    assert [v["seq"] for v in ins.store.list_violations(after=7)] == [9, 8]
    # the JSONL log still has every record
    assert ins.flush_log()
    lines = (tmp_path / "inspect" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 5 * 12 + 3
    assert json.loads(lines[-1])["verdict"] == "violation" and json.loads(lines[-1])["payload"] == 6


def test_jsonl_rotates_at_its_size_limit(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "r.jsonl", max_bytes=1000)
    for i in range(30):
        log.write([{"i": i, "pad": "x" * 80}])
    log.close()
    current = (tmp_path / "r.jsonl").read_text().splitlines()
    previous = (tmp_path / "r.jsonl.1").read_text().splitlines()
    assert (tmp_path / "r.jsonl").stat().st_size <= 1000
    assert [json.loads(x)["i"] for x in previous + current] == list(
        range(30 - len(previous) - len(current), 30)
    )


@pytest.mark.parametrize("writer", WRITERS)
def test_fast_jsonl_lines_equal_the_records(tmp_path: Path, make_inspector, writer: str) -> None:
    """The log's shortcut encoder writes exactly Evaluation.records (redacted) plus the payload id, in the
    proxy's process or in the writer process (which decodes the wire bytes again)."""
    cc = load_contract(default_contract_path())
    a = {**session_attrs(), "model": "m"}
    pts = [
        Point("claude_code.token.usage", 5, {**a, "type": "input"}),
        Point("claude_code.token.usage", 6.5, {**a, "type": "output"}),
        Point("claude_code.token.usage", float("inf"), {**a, "type": "input"}),
        Point("claude_code.token.usage", 7, {**a, "type": "bogus"}),
        Point("claude_code.cost.usage", 0.125, {**a, "prompt": "secret prompt"}),
        Point("some.gauge", 3, a, kind="gauge"),
    ]
    ins = make_inspector(
        {"inspect": {"console": "off", "records_per_payload": 1}, "log": {"writer": writer}}, tmp_path
    )
    for _ in range(2):  # the second time every series comes from the caches
        req = metrics_request(pts)
        raw = req.SerializeToString()
        ev = cc.evaluate("metrics", req, raw)
        entry = ins.observe("metrics", ev)
        expected = [
            json.loads(json.dumps({**ins.redactor.record(r), "payload": entry["seq"]})) for r in ev.records
        ]
        assert ins.flush_log()
        lines = (tmp_path / "inspect" / "records.jsonl").read_text().splitlines()[-len(pts) :]
        assert [json.loads(x) for x in lines] == expected
    assert "secret prompt" not in (tmp_path / "inspect" / "records.jsonl").read_text()


@pytest.mark.parametrize("writer", WRITERS)
def test_huge_attribute_values_are_clipped_everywhere(tmp_path: Path, make_inspector, writer: str) -> None:
    cc = load_contract(default_contract_path())
    huge = "x" * 100_000
    ins = make_inspector({"inspect": {"console": "off"}, "log": {"writer": writer}}, tmp_path)
    pts = [
        Point("claude_code.token.usage", 1, {**session_attrs(), "model": huge, "type": "input"}),
        Point("claude_code.token.usage", 1, {**session_attrs(), "model": "m", "type": huge}),
    ]
    for _ in range(2):
        entry = ins.observe("metrics", cc.evaluate("metrics", metrics_request(pts)))
    entry = ins.store.get(entry["seq"])
    assert all(len(json.dumps(r)) < 6000 for r in entry["records"])
    assert entry["records"][0]["attributes"]["model"].endswith("…(+97952 chars)")
    assert all(len(v["message"]) < 300 for v in ins.store.violations)
    assert ins.flush_log()
    lines = (tmp_path / "inspect" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(len(x) < 6000 for x in lines)
