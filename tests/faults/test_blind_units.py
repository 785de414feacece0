"""Blind challenges without a lab: the pool, the draw, concealing check results, grading, sealing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.checks.result import CheckResult
from labctl.errors import LabError
from labctl.faults import blind
from labctl.faults.records import ActiveFault, AuthFault, OverrideUndo, RelaySwitch
from labctl.faults.registry import FAULTS
from labctl.state import LabState

MODULE2 = ["proxy", "collector"]
MODULE4 = ["proxy", "collector", "prometheus", "scrape-relay", "query-relay", "grafana"]


def test_every_variant_of_the_pool_has_an_answer_and_a_known_cause() -> None:
    pool = blind.variants()
    assert {n for n, _ in pool} == set(FAULTS)
    for name, opts in pool:
        truth = blind.answer(name, opts)
        assert truth.cause in blind.CAUSES and truth.hop in blind.hops() and truth.layer in blind.CANDIDATES
        assert truth.explanation and truth.pointers


def test_the_pool_slows_the_scrape_hop_past_its_timeout() -> None:
    """Half a second late is still a good scrape: the pool's slow scrape hop must be one check can see."""
    slow = [o for n, o in blind.variants(["latency"]) if o["hop"] == "collector-prometheus"]
    assert slow and all(o["ms"] == blind.SLOW_SCRAPE_MS > 4000 / 2 for o in slow)


def test_hop_faults_are_answered_on_their_hop() -> None:
    assert blind.answer("network", {"hop": "collector-prometheus", "mode": "hang"}).layer == 3
    assert blind.answer("latency", {"hop": "prometheus-grafana", "ms": 500}).hop == "prometheus-grafana"
    assert blind.answer("endpoint", {"kind": "protocol-mismatch"}).cause == "protocol-mismatch"
    assert blind.answer("endpoint", {"kind": "wrong-port"}).cause == "wrong-endpoint"


def test_the_draw_is_seeded_and_fits_the_lab() -> None:
    first = blind.draw(MODULE4, "native", True, seed=7)
    assert first == blind.draw(MODULE4, "native", True, seed=7)
    seen = [blind.draw(MODULE2, "native", False, seed=s) for s in range(200)]
    for name, opts in seen:
        assert set(FAULTS[name].needs) <= set(MODULE2)
        assert opts.get("hop", "proxy-collector") == "proxy-collector"
    docker = [blind.draw(MODULE4, "docker", False, seed=s) for s in range(200)]
    assert all(n != "latency" and o.get("hop") != "prometheus-grafana" for n, o in docker)
    assert all("docker" in FAULTS[n].runtimes for n, _ in docker)  # broken-rules, datasource-uid: native
    assert {"broken-rules", "datasource-uid"} <= {
        n for n, _ in (blind.draw(MODULE4, "native", True, s) for s in range(400))
    }
    assert {
        n for n, _ in (blind.draw(MODULE4, "native", True, seed=s, names=["auth"]) for s in range(5))
    } == {"auth"}
    with pytest.raises(LabError):
        blind.draw(["proxy"], "native", False, seed=1, names=["storage-down"])


def test_conceal_keeps_evidence_and_lists_candidates() -> None:
    results = [
        CheckResult(1, "proxy answers", True, ["ready"]),
        CheckResult(
            2,
            "proxy → collector",
            False,
            ["TCP: connects, then no answer"],
            cause="the hop is partitioned",
            hint="`labctl faults`",
            playbook="upstream-unreachable",
        ),
    ]
    ok, failing = blind.conceal(results)
    assert ok == results[0]
    assert failing.evidence == ["TCP: connects, then no answer"]
    assert failing.cause.startswith("one of: ") and "partitioned" not in failing.cause
    assert all(c in failing.cause for c in blind.CANDIDATES[2])
    assert failing.playbook == "README" and "faults" not in (failing.hint or "")


def test_grading_right_partly_and_wrong() -> None:
    truth = blind.answer("auth", {"token": "wrong"})
    right = {"layer": 2, "hop": "proxy-collector", "cause": "credentials"}
    assert blind.grade(right, truth) | {"rows": None} == {
        "rows": None,
        "score": 4,
        "of": 4,
        "correct": True,
        "diagnosed": True,
    }
    wrong_cause = blind.grade({**right, "cause": "hop-cut"}, truth)
    assert wrong_cause["score"] == 2 and wrong_cause["correct"] is False
    assert blind.grade(None, truth)["score"] == 0 and blind.grade(None, truth)["diagnosed"] is False


def test_a_diagnosis_is_validated() -> None:
    with pytest.raises(LabError, match="cause class"):
        blind.Diagnosis.make(2, "proxy-collector", "gremlins", "e", "f")
    with pytest.raises(LabError, match="hop"):
        blind.Diagnosis.make(2, "proxy-prometheus", "hop-cut", "e", "f")
    with pytest.raises(LabError, match="evidence"):
        blind.Diagnosis.make(2, "proxy-collector", "hop-cut", " ", "f")


def test_hidden_faults_are_sealed_in_lab_json(tmp_path: Path) -> None:
    lab = LabState(dir=tmp_path, stage="module-2")
    switch = RelaySwitch("proxy-collector", "latency", 5, "otlp-relay", "http://127.0.0.1:9")
    lab.faults = {
        "auth": ActiveFault(
            record=AuthFault("wrong", "http://c:4317", "x", OverrideUndo("collector"), {}),
            options={"token": "wrong"},
            since=1.0,
            layer=2,
            hidden=True,
        ),
        "latency": ActiveFault(record=switch, options={"ms": 5}, since=2.0, layer=2),
    }
    lab.save()
    text = (tmp_path / "lab.json").read_text()
    assert "auth" not in text and "wrong" not in text and "latency" in text
    assert list(json.loads(text)["faults"]) == ["latency"]
    assert LabState.load(tmp_path).faults == lab.faults
