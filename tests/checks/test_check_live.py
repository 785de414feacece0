"""`labctl check` against a real native module-4 lab (no Grafana binary here: the panels' PromQL is
evaluated against Prometheus directly, and the report says so)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_labctl

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_check_follows_the_marker_through_every_layer(native_lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = native_lab("module-4")
    res = run_labctl("check", "--json", state_dir=lab.dir, check=False)
    report = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(report, indent=1)
    by_name = {(r["layer"], r["name"]): r for r in report["results"]}
    marker = report["marker"]
    assert marker.startswith("check-")
    # Layer 1: received and judged by the contract.
    assert any("verdict ok" in e for e in by_name[(1, "contract verdict")]["evidence"])
    # Layer 2: the Collector's own counters moved.
    assert any("receiver accepted +13" in e for e in by_name[(2, "collector pipeline")]["evidence"])
    # Layer 3: the marker's series are in Prometheus; the pipeline rules are loaded.
    assert any(f"lab_marker={marker}" in e for e in by_name[(3, "marker stored")]["evidence"])
    assert any("pipeline-health alert rules loaded" in e for e in by_name[(3, "alert rules & alerts")]["evidence"])
    # Layer 4: no Grafana binary, every panel query evaluated directly and returning data.
    grafana = by_name[(4, "grafana")]
    assert "evaluated against Prometheus directly" in grafana["evidence"][0]
    boards = [r for r in report["results"] if r["name"].startswith("dashboard ")]
    assert {b["name"] for b in boards} == {"dashboard claude-code-usage", "dashboard pipeline-health"}
    for board in boards:
        assert board["verdict"] == "ok", board

    # --layer narrows the report (the marker still goes through the earlier layers).
    res = run_labctl("check", "--layer", "3", "--json", state_dir=lab.dir, check=False)
    assert res.returncode == 0
    assert {r["layer"] for r in json.loads(res.stdout)["results"]} == {3}
    # The table names each layer and the marker.
    table = run_labctl("check", state_dir=lab.dir, check=False)
    assert table.returncode == 0 and "layer 4 · visualization" in table.stdout and "all checked layers are green" in table.stdout


def test_check_without_a_lab_is_a_clear_error(tmp_path: Path) -> None:
    res = run_labctl("check", state_dir=tmp_path / "nolab", check=False)
    assert res.returncode == 2
    assert "no lab is running" in res.stderr


def test_check_rejects_an_unknown_layer(tmp_path: Path) -> None:
    res = run_labctl("check", "--layer", "7", state_dir=tmp_path / "nolab", check=False)
    assert res.returncode == 2 and "--layer 7 does not exist" in res.stderr


def test_module_1_checks_the_proxy_only_and_faults_need_later_modules(native_lab) -> None:  # type: ignore[no-untyped-def]
    lab = native_lab("module-1")
    res = run_labctl("check", "--json", state_dir=lab.dir, check=False)
    report = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(report, indent=1)
    verdicts = {(r["layer"], r["verdict"]) for r in report["results"]}
    assert (1, "ok") in verdicts and {(2, "skip"), (3, "skip"), (4, "skip")} <= verdicts
    broke = run_labctl("break", "network", state_dir=lab.dir, check=False)
    assert broke.returncode == 2
    assert "needs collector, which module-1 does not run" in broke.stderr
    assert json.loads(run_labctl("faults", "--json", state_dir=lab.dir).stdout) == []
