"""Auth and process faults against a real native lab (see test_faults_live.py for the sequence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.live import Lab, exercise, live_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from live_lab(tmp_path_factory)


@pytest.mark.parametrize("token", ["wrong", "missing"])
def test_auth(lab: Lab, token: str) -> None:
    # The proxy holds data on 401 (it does not drop it): everything arrives once the token matches.
    exercise(lab, "auth", [token], 2, "upstream-auth", "rejects the proxy's credentials",
             "ProxyUpstreamFailing" if token == "wrong" else None)


def test_collector_crash(lab: Lab) -> None:
    exercise(lab, "collector-crash", [], 2, "collector-down", "Collector is not running", "LabScrapeTargetDown",
             wait_alert_resolved=True)


def test_storage_down(lab: Lab) -> None:
    exercise(lab, "storage-down", [], 3, "prometheus-down", "Prometheus does not answer", None)


def test_break_twice_and_heal_unknown_are_clear(lab: Lab) -> None:
    lab.cli("break", "latency", "50")
    try:
        again = lab.cli("break", "latency", "60", check=False)
        assert again.returncode == 2 and "already active" in again.stderr
        clash = lab.cli("break", "network", check=False)
        assert clash.returncode == 2 and "already changes hop:proxy-collector" in clash.stderr
    finally:
        lab.cli("heal", "--all")
    res = lab.cli("heal", "auth", check=False)
    assert res.returncode == 2 and "not active" in res.stderr
