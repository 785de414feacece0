"""Auth and process faults against a real native lab (see test_faults_live.py for the sequence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.faults.live import REPO, Lab, exercise, live_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from live_lab(tmp_path_factory)


@pytest.mark.parametrize("token", ["wrong", "missing"])
def test_auth(lab: Lab, token: str) -> None:
    # The proxy holds data on 401 (it does not drop it): everything arrives once the token matches.
    exercise(
        lab,
        "auth",
        [token],
        2,
        "upstream-auth",
        "rejects the proxy's credentials",
        "ProxyUpstreamFailing" if token == "wrong" else None,
    )


def test_collector_crash(lab: Lab) -> None:
    # heal waits until the proxy delivers again (no retry backoff left) and Prometheus scrapes the
    # Collector: the very next check is green.
    exercise(
        lab,
        "collector-crash",
        [],
        2,
        "collector-down",
        "Collector is not running",
        "LabScrapeTargetDown",
        wait_alert_resolved=True,
        green_at_once=True,
    )


def test_contract_variant_lives_in_the_state_dir(lab: Lab) -> None:
    repo_faults = REPO / "lab" / "modules" / "module-1" / "faults"
    before = sorted(repo_faults.glob("*")) if repo_faults.exists() else []

    def in_state_dir(lab: Lab, entry: dict) -> None:  # type: ignore[type-arg]
        files = list((lab.dir / "contracts").glob("*.yaml"))  # a neutral name: blind mode shows this path
        assert len(files) == 1 and "team.id" in files[0].read_text(), files
        assert (sorted(repo_faults.glob("*")) if repo_faults.exists() else []) == before, (
            "nothing in the checkout"
        )
        contract = requests.get(lab.state.url("proxy", "admin") + "/api/contract", timeout=5).json()
        assert contract["path"] == str(files[0])

    exercise(
        lab,
        "contract",
        [],
        1,
        "contract-violation",
        "breaks the metric/event contract",
        None,
        during=in_state_dir,  # switched live (PUT /api/contract): the same proxy process throughout
    )
    assert not list((lab.dir / "faults").glob("contract/*.yaml")), "heal removes the variant"


def test_storage_down(lab: Lab) -> None:
    exercise(lab, "storage-down", [], 3, "prometheus-down", "Prometheus does not answer", None)


def test_break_twice_and_heal_unknown_are_clear(lab: Lab) -> None:
    # By default `break` says what it did in neutral terms; the details only with --explain.
    plain = lab.cli("break", "latency", "50")
    # The proxy exports through its permanent relay: the fault switches it, nothing is re-pointed.
    assert "otlp-relay switched" in plain.stdout and "the fault is in effect (verified" in plain.stdout
    assert "relays to" not in plain.stdout and "ms delay" not in plain.stdout, plain.stdout
    try:
        again = lab.cli("break", "latency", "60", check=False)
        assert again.returncode == 2 and "already active" in again.stderr
        clash = lab.cli("break", "network", check=False)
        assert clash.returncode == 2 and "already changes hop:proxy-collector" in clash.stderr
    finally:
        lab.cli("heal", "--all")
    explained = lab.cli("break", "latency", "50", "--explain")
    try:
        assert "relays with 50 ms delay" in explained.stdout, explained.stdout
    finally:
        lab.cli("heal", "latency")
    # Nothing to heal is not an error; an unknown fault name is.
    res = lab.cli("heal", "auth", check=False)
    assert res.returncode == 0 and "auth is not active: nothing to heal" in res.stdout, (
        res.stdout + res.stderr
    )
    res = lab.cli("heal", "no-such-fault", check=False)
    assert res.returncode == 2 and "unknown fault 'no-such-fault'" in res.stderr
