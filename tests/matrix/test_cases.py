"""The cases file: enough meaningful cases, every dimension covered, and a CI subset covering every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.matrix.cases import load_cases, select

CASES = load_cases()
CI = [c for c in CASES if "ci" in c.tags]


def values(cases: list, dim: str) -> set[str]:
    return {c.dims[dim] for c in cases}


def test_at_least_forty_cases_each_with_expectation_and_focus() -> None:
    assert len(CASES) >= 40
    for c in CASES:
        assert c.expect["outcome"] and len(c.focus) > 20 and c.title


@pytest.mark.parametrize("cases", [CASES, CI], ids=["all", "ci"])
def test_every_dimension_is_covered(cases: list) -> None:
    exporters = {e for c in cases for e in c.dims["exporter"].split(",")}
    assert {"otlp", "prometheus", "console", "logging", "none"} <= exporters
    assert {"grpc", "http/protobuf", "http/json"} <= values(cases, "protocol")
    endpoints = " | ".join(values(cases, "endpoint"))
    for kind in (
        "local gRPC",
        "local HTTP",
        "remote",
        "SaaS",
        "invalid URL",
        "unreachable host",
        "wrong port",
        "HTTP port (4318) with grpc",
        "gRPC port (4317) with http",
    ):
        assert kind in endpoints, kind
    assert {"1000", "5000", "10000", "30000", "60000"} <= values(CASES, "interval")
    assert len(values(cases, "interval")) >= 4
    assert {"1000", "5000"} <= values(cases, "timeout")
    assert {"none", "valid", "invalid token"} <= values(cases, "headers")


def test_full_matrix_covers_all_seed_timeouts() -> None:
    assert {"1000", "5000", "30000"} <= values(CASES, "timeout")


def test_ci_subset_covers_every_error_scenario() -> None:
    ids = {c.id for c in CI}
    outcomes = {c.expect["outcome"] for c in CI}
    assert {"delivered", "failed", "config_error", "nothing"} <= outcomes
    assert any(c.dims["endpoint"] == "invalid URL" for c in CI)  # invalid endpoint
    assert any(c.dims["endpoint"] == "unreachable host" for c in CI)  # unreachable
    assert any(
        c.dims["headers"] == "invalid token" and "401" in c.expect.get("error", "") for c in CI
    )  # auth
    assert any(c.receiver["kind"] == "blackhole" and "gives_up_s" in c.expect for c in CI)  # timeout
    assert {"mismatch-grpc-to-http-port", "mismatch-http-to-grpc-port"} <= ids


def test_filters() -> None:
    assert [c.id for c in select(CASES, ["otlp-grpc-local"])] == ["otlp-grpc-local"]
    grpc_ci = select(CASES, ["ci", "protocol=grpc"])
    assert grpc_ci and all("ci" in c.tags and c.dims["protocol"] == "grpc" for c in grpc_ci)
    either = select(CASES, ["timeout=1000,timeout=5000"])
    assert {c.dims["timeout"] for c in either} == {"1000", "5000"}
    with pytest.raises(LabError, match="no matrix case matches"):
        select(CASES, ["no-such-thing"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("cases: []", "no `cases:` list"),
        (
            "cases:\n  - {id: a, title: t, receiver: {kind: moon}, env: {}, expect: {outcome: delivered}, focus: f}",
            "receiver kind",
        ),
        (
            "cases:\n  - {id: a, title: t, receiver: {kind: none}, env: {}, expect: {outcome: maybe}, focus: f}",
            "expect.outcome",
        ),
        (
            (
                "cases:\n  - {id: a, title: t, receiver: {kind: none}, env: {}, expect: {outcome: nothing, seen_in: [mars]},"
                " focus: f}"
            ),
            "unknown places",
        ),
        (
            "cases:\n  - {id: a, title: t, receiver: {kind: none}, env: {}, expect: {outcome: nothing, wat: 1}, focus: f}",
            "unknown expect keys",
        ),
        (
            "cases:\n  - {id: a, receiver: {kind: none}, env: {}, expect: {outcome: nothing}, focus: f}",
            "missing `title`",
        ),
        ("cases: [\n", "cannot read"),
    ],
)
def test_broken_cases_file_names_the_problem(tmp_path: Path, body: str, fragment: str) -> None:
    f = tmp_path / "cases.yaml"
    f.write_text(body)
    with pytest.raises(LabError, match=fragment.replace("(", r"\(").replace("`", "`")):
        load_cases(f)
