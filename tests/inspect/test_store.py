"""The inspector's bounded memory and log: ring buffers, records per payload, JSONL rotation."""

from __future__ import annotations

import json
from pathlib import Path

from labctl.contract import default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, sample_metrics, session_attrs
from labctl.proxy.inspect import Inspector
from labctl.proxy.inspect.store import JsonlLog


def test_ring_buffers_are_bounded_and_polling_by_seq_works(tmp_path: Path) -> None:
    cc = load_contract(default_contract_path())
    ins = Inspector({"inspect": {"payloads": 3, "records_per_payload": 5, "violations": 4, "console": "off"}},
                    tmp_path)
    for _ in range(5):
        ins.observe("metrics", cc.evaluate("metrics", sample_metrics()), {"protocol": "grpc"})
    assert [p["seq"] for p in ins.store.payloads] == [3, 4, 5]
    assert all(len(p["records"]) == 5 and p["records_truncated"] == 7 for p in ins.store.payloads)
    assert [p["seq"] for p in ins.store.list(after=3)] == [5, 4]
    assert ins.store.get(1) is None and ins.store.get(5)["items"] == 12
    bad = metrics_request([Point("claude_code.token.usage", -1, {**session_attrs(), "model": "m", "type": "x"})] * 3)
    ins.observe("metrics", cc.evaluate("metrics", bad))
    assert len(ins.store.violations) == 4  # 3 points x 3 violations, newest 4 kept
    assert ins.store.last_violation_seq == 9
    assert [v["seq"] for v in ins.store.list_violations(after=7)] == [9, 8]
    # the JSONL log still has every record
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
    assert [json.loads(x)["i"] for x in previous + current] == list(range(30 - len(previous) - len(current), 30))
