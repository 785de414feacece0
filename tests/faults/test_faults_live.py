"""Each fault against a real native lab (proxy, Collector, Prometheus), the way a student does it:

    send → break → `labctl check` names the layer, cause and playbook → the pipeline alert fires →
    heal → `labctl check` is green → everything the proxy acknowledged reached Prometheus.

Network-side faults here; process and auth faults in test_faults_live_2.py (a second lab, so pytest-xdist
can run both at once). Alert resolution is awaited for `up == 0` alerts; the rate-based proxy alert
resolves only after its 1m window, which is too slow to wait for in CI (its firing is checked).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.faults.live import Lab, exercise, live_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from live_lab(tmp_path_factory)


def test_network_partition_proxy_collector(lab: Lab) -> None:
    exercise(lab, "network", [], 2, "upstream-unreachable", "hang and time out", "ProxyUpstreamFailing")


def test_network_refuse(lab: Lab) -> None:
    exercise(lab, "network", ["--mode", "refuse"], 2, "upstream-unreachable", "connection refused", None)


def _through_the_scrape_relay(mode: str) -> Any:
    """Mid-fault: natively the fault switched the lab's scrape relay (Prometheus' targets did not change),
    and the Collector's series keep its own address as `instance`."""

    def check(lab: Lab, entry: dict[str, Any]) -> None:
        state = lab.state
        relay = requests.get(state.url("scrape-relay", "control") + "/status", timeout=5).json()
        assert relay["mode"] == mode, relay
        targets = json.loads((state.data_dir("prometheus") / "targets" / "collector.json").read_text())
        assert targets[0]["targets"] == [state.addr("scrape-relay", "prom_exporter")]
        up = lab.prom("/api/v1/query", query='up{job="collector"}')["result"]
        assert [r["metric"]["instance"] for r in up] == [state.addr("collector", "prom_exporter")]
        assert any("scrape relay" in e for e in entry["evidence"]), entry

    return check


def test_network_scrape_partition(lab: Lab) -> None:
    exercise(
        lab,
        "network",
        ["--hop", "collector-prometheus"],
        3,
        "scrape-target-down",
        "the hop is partitioned",
        "LabScrapeTargetDown",
        wait_alert_resolved=True,
        during=_through_the_scrape_relay("blackhole"),
        green_at_once=True,
    )


def test_network_scrape_refuse(lab: Lab) -> None:
    exercise(
        lab,
        "network",
        ["--hop", "collector-prometheus", "--mode", "refuse"],
        3,
        "scrape-target-down",
        "connection refused",
        None,
        during=_through_the_scrape_relay("refuse"),
        green_at_once=True,
    )


def test_latency(lab: Lab) -> None:
    exercise(lab, "latency", ["500"], 2, "upstream-slow", "the hop is slow", None)


def test_a_slow_scrape_is_told_from_a_cut_one(lab: Lab) -> None:
    """Above the scrape timeout (4 s) Prometheus reports a slow hop like a cut one; check's timed probe
    waits longer and finds the first byte (the cut hop's case is test_network_scrape_partition)."""
    exercise(
        lab,
        "latency",
        ["--hop", "collector-prometheus", "--ms", "2500"],
        3,
        "upstream-slow",
        "the hop is slow, not cut",
        None,
    )


def _collector_pid(lab: Lab) -> int | None:
    from labctl.runtimes import process

    rec = process.read_record(lab.state.pid_path("collector"))
    return rec.pid if rec else None


def test_memory_pressure(lab: Lab) -> None:
    # Applied and healed by a reload of the Collector's local slot: the same process throughout.
    pid = _collector_pid(lab)

    def same_process(lab: Lab, entry: dict) -> None:  # type: ignore[type-arg]
        assert _collector_pid(lab) == pid

    exercise(
        lab,
        "memory-pressure",
        [],
        2,
        "collector-refusing",
        "refuses the proxy's data",
        "CollectorReceiverRefusing",
        during=same_process,
    )
    assert pid is not None and _collector_pid(lab) == pid


@pytest.mark.parametrize(
    ("kind", "playbook", "cause"),
    [
        ("unreachable-host", "upstream-unreachable", "does not resolve"),
        ("wrong-port", "upstream-unreachable", "connection refused"),
        ("protocol-mismatch", "upstream-protocol", "protocol mismatch"),
    ],
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

    exercise(
        lab,
        "endpoint",
        ["invalid-url"],
        1,
        "proxy-down",
        "not running",
        None,
        proxy_restarts=True,
        during=no_stale_log,
    )
