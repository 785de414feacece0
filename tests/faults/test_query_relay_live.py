"""The native prometheus↔grafana hop: Grafana's datasource queries Prometheus through the query relay,
and `network`/`latency --hop prometheus-grafana` switch that relay.

Grafana cannot run on the CI machines (no binary, no download), so the hop is exercised up to the relay:
a real module-4 lab (Prometheus behind the real query relay, Grafana "not available"), the fault's own
apply/verify/heal functions (the CLI refuses without Grafana: nothing to partition), and a query sent to
the address Grafana's datasource URL resolves to natively — it hangs, is refused, is slow, then works.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labctl.faults import network, relay_switch
from labctl.faults.base import FaultContext
from labctl.faults.engine import context
from labctl.runtimes.native import NativeRuntime
from labctl.state import LabState
from tests.conftest import run_labctl, started_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOP = "prometheus-grafana"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("query-relay") / "lab"
    with started_lab("module-4", state_dir):
        yield state_dir


def _ctx(state_dir: Path) -> FaultContext:
    return context(LabState.load(state_dir))


def _datasource_url(ctx: FaultContext) -> str:
    """LAB_PROMETHEUS_URL as the native runtime gives it to Grafana (the provisioned datasource's url)."""
    runtime = ctx.runtime
    assert isinstance(runtime, NativeRuntime)
    return ctx.model.service_env("grafana", runtime.placement(), ctx.running)["LAB_PROMETHEUS_URL"]


def _query(ctx: FaultContext) -> str:
    """What Grafana's next query meets: 'ok', 'hangs' or 'refused' (and how long it took)."""
    try:
        resp = requests.get(_datasource_url(ctx) + "/api/v1/query", params={"query": "up"}, timeout=(1, 1.5))
    except requests.ReadTimeout:
        return "hangs"
    except requests.ConnectionError as exc:
        return "refused" if "refused" in str(exc).lower() else f"error: {exc}"
    return (
        "ok" if resp.status_code == 200 and resp.json()["status"] == "success" else f"HTTP {resp.status_code}"
    )


def _mode(ctx: FaultContext, service: str) -> str:
    return str(requests.get(ctx.lab.url(service, "control") + "/status", timeout=5).json()["mode"])


def test_natively_grafanas_datasource_is_the_query_relay_in_front_of_prometheus(lab: Path) -> None:
    ctx = _ctx(lab)
    assert _datasource_url(ctx) == f"http://{ctx.lab.addr('query-relay', 'prometheus_web')}"
    assert _query(ctx) == "ok"
    assert _mode(ctx, "query-relay") == "pass" and _mode(ctx, "scrape-relay") == "pass"


def test_without_grafana_the_cli_refuses_the_hop_with_a_clear_error(lab: Path) -> None:
    ctx = _ctx(lab)
    if ctx.runtime.is_running("grafana"):
        pytest.skip("Grafana runs on this machine: the CLI cuts the hop")
    res = run_labctl("break", "network", "--hop", HOP, state_dir=lab, check=False)
    assert res.returncode != 0
    assert "Grafana is not running" in res.stderr and "labctl install grafana" in res.stderr
    assert LabState.load(lab).faults == {} and _mode(ctx, "query-relay") == "pass"


@pytest.mark.parametrize(
    ("mode", "latency_ms", "seen", "evidence"),
    [
        ("blackhole", 0, "hangs", "accepts a request and never answers"),
        ("refuse", 0, "refused", "refuses connections"),
        ("latency", 400, "ok", "relays with 400 ms delay"),
    ],
)
def test_the_hop_switches_the_query_relay_only_and_heal_brings_queries_back(
    lab: Path, mode: str, latency_ms: int, seen: str, evidence: str
) -> None:
    ctx = _ctx(lab)
    record = relay_switch.apply(ctx, HOP, mode, latency_ms)
    try:
        assert record.relay == "query-relay"
        shown = network.verify(ctx, record)
        assert shown[0].startswith("query relay (pid ") and any(
            evidence in e and "Grafana's way" in e for e in shown
        )
        started = time.monotonic()
        assert _query(ctx) == seen
        if mode == "latency":
            assert time.monotonic() - started >= 0.4
        # Cutting Grafana's queries leaves Prometheus' own scrapes alone (a separate relay process).
        assert _mode(ctx, "scrape-relay") == "pass"
        direct = requests.get(
            ctx.lab.url("prometheus", "web") + "/api/v1/query", params={"query": "up"}, timeout=5
        )
        assert direct.json()["status"] == "success"
    finally:
        network.heal(ctx, record)  # proves a request through the relay reaches Prometheus again
    assert _mode(ctx, "query-relay") == "pass"
    assert _query(ctx) == "ok"
