"""Each fault against a real native lab (proxy, Collector, Prometheus), the way a student does it:

    send → break → `labctl check` names the layer, cause and playbook → the pipeline alert fires →
    heal → `labctl check` is green → everything the proxy acknowledged reached Prometheus.

Network-side faults here; process and auth faults in test_faults_live_2.py (a second lab, so pytest-xdist
can run both at once). Alert resolution is awaited for `up == 0` alerts; the rate-based proxy alert
resolves only after its 1m window, which is too slow to wait for in CI (its firing is checked).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.live import Lab, exercise, live_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from live_lab(tmp_path_factory)


def test_network_partition_proxy_collector(lab: Lab) -> None:
    exercise(lab, "network", [], 2, "upstream-unreachable", "hang and time out", "ProxyUpstreamFailing")


def test_network_refuse(lab: Lab) -> None:
    exercise(lab, "network", ["--mode", "refuse"], 2, "upstream-unreachable", "connection refused", None)


def test_network_scrape_partition(lab: Lab) -> None:
    exercise(lab, "network", ["--hop", "collector-prometheus"], 3, "scrape-target-down",
             "Prometheus cannot scrape", "LabScrapeTargetDown", wait_alert_resolved=True)


def test_latency(lab: Lab) -> None:
    exercise(lab, "latency", ["500"], 2, "upstream-slow", "the hop is slow", None)


@pytest.mark.parametrize(
    ("kind", "playbook", "cause"),
    [("unreachable-host", "upstream-unreachable", "does not resolve"),
     ("wrong-port", "upstream-unreachable", "connection refused"),
     ("protocol-mismatch", "upstream-protocol", "protocol mismatch")],
)
def test_endpoint(lab: Lab, kind: str, playbook: str, cause: str) -> None:
    exercise(lab, "endpoint", [kind], 2, playbook, cause, None)


def test_endpoint_invalid_url_stops_the_proxy(lab: Lab) -> None:
    # The one fault that restarts the proxy (it refuses to start): the evidence is from this start only.
    def no_stale_log(lab: Lab, entry: dict) -> None:  # type: ignore[type-arg]
        _, report = lab.check()
        down = next(r for r in report["results"] if r["name"] == "proxy answers")
        logs = [e for e in down["evidence"] if e.startswith("log: ")]
        assert logs and all("not an http(s) URL" in e or "grpc://" in e for e in logs), down

    exercise(lab, "endpoint", ["invalid-url"], 1, "proxy-down", "not running", None, proxy_restarts=True,
             during=no_stale_log)
