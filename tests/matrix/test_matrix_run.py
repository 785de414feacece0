"""`labctl matrix run` for real: the CI subset (every dimension and error scenario) runs as expected, and a
case whose expectation is wrong makes the command fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def matrix(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labctl", "matrix", "run", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )


def test_ci_subset_runs_as_expected(tmp_path: Path) -> None:
    run = matrix("--filter", "ci", "--report-dir", str(tmp_path), "--jobs", "4", "--json")
    report = json.loads(run.stdout)
    bad = {c["id"]: c["mismatches"] for c in report["cases"] if not c["ok"]}
    assert run.returncode == 0 and not bad, (bad, run.stderr[-3000:])
    assert report["total"] >= 25
    assert {p.name for p in tmp_path.iterdir()} >= {"report.json", "REPORT.md", "report.html", "cases"}
    for case in report["cases"]:  # every case kept its own directory with the emulator's evidence
        assert (tmp_path / "cases" / case["id"] / "stderr.txt").exists()


def test_an_unexpected_case_fails_the_run(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n"
        "  - id: wrong-expectation\n"
        "    title: nothing listens there, yet this case expects delivery\n"
        "    dims: {endpoint: wrong port, headers: none}\n"
        "    receiver: {kind: none}\n"
        "    env: {CLAUDE_CODE_ENABLE_TELEMETRY: '1', OTEL_METRICS_EXPORTER: otlp, OTEL_EXPORTER_OTLP_PROTOCOL: grpc,\n"
        "          OTEL_EXPORTER_OTLP_ENDPOINT: '{refused_url}', OTEL_METRIC_EXPORT_INTERVAL: '500',\n"
        "          OTEL_EXPORTER_OTLP_TIMEOUT: '1000'}\n"
        "    emit: {duration: 2}\n"
        "    expect: {outcome: delivered, seen_in: [collector]}\n"
        "    focus: a deliberately wrong expectation, to prove the matrix can say no\n"
    )
    run = matrix("--cases", str(cases), "--report-dir", str(tmp_path / "out"), timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "wrong-expectation" in run.stderr and "expected delivered, observed failed" in run.stderr
    md = (tmp_path / "out" / "REPORT.md").read_text()
    assert "✗" in md
