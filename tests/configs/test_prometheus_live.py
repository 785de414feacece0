"""Real Prometheus with the lab's prometheus.yml and rules, scraping the real Collector (free ports,
targets files written like the runtimes write them). Queried with prometheus-api-client, retries off."""

from __future__ import annotations

import re
import time

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from prometheus_api_client import PrometheusConnect

from labctl.promql import client
from tests.configs.confhelpers import Collector, free_port, wait_for, write_targets
from tests.configs.otlp_send import send_claude_code_metrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _alerts(prom: PrometheusConnect, name: str, state: str) -> list[dict]:
    alerts = prom.get_current_metric_value("ALERTS", label_config={"alertname": name, "alertstate": state})
    return [a["metric"] for a in alerts]


def test_prometheus_scrapes_the_collector_and_stores_claude_code_metrics(
    collector: Collector, start_prometheus
) -> None:
    dead_port = free_port()  # nothing listens there: the proxy target is down on purpose
    server = start_prometheus(
        {
            "collector.json": collector.addr("prom_exporter"),
            "collector-internal.json": collector.addr("internal"),
            "proxy.json": f"127.0.0.1:{dead_port}",
        }
    )
    prom = client(server.url)
    send_claude_code_metrics(
        GrpcMetricExporter(endpoint=collector.addr("otlp_grpc"), insecure=True), marker="prom-grpc"
    )
    send_claude_code_metrics(
        HttpMetricExporter(endpoint=collector.url("otlp_http", "/v1/metrics")), marker="prom-http", tokens=700
    )

    def marker_value(marker: str) -> float | None:
        res = prom.custom_query(
            f'sum(claude_code_token_usage_tokens_total{{lab_marker="{marker}", type="input"}})'
        )
        return float(res[0]["value"][1]) if res else None

    wait_for("both markers in Prometheus", lambda: marker_value("prom-grpc") and marker_value("prom-http"))
    assert marker_value("prom-grpc") == 1200
    assert marker_value("prom-http") == 700
    # Scraped through the collector job; Claude Code's own service.name is kept as exported_job.
    series = prom.custom_query('claude_code_cost_usage_USD_total{lab_marker="prom-grpc"}')
    assert series and series[0]["metric"]["job"] == "collector"
    assert series[0]["metric"]["exported_job"] == "claude-code"
    assert series[0]["metric"]["session_id"] == "session-prom-grpc"

    def up() -> dict[str, str]:
        return {r["metric"]["job"]: r["value"][1] for r in prom.custom_query("up")}

    expected = {"collector": "1", "otelcol": "1", "prometheus": "1", "proxy": "0"}
    wait_for(f"every target scraped once: {expected}", lambda: up() == expected, timeout=30)
    internal = prom.custom_query('sum(otelcol_receiver_accepted_metric_points_total{job="otelcol"})')
    assert internal and float(internal[0]["value"][1]) >= 16

    # Every rule loaded and evaluating without error.
    def rule_health() -> dict[str, str]:
        groups = requests.get(f"{server.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        return {r["name"]: r["health"] for g in groups for r in g["rules"]}

    assert {"LabScrapeTargetDown", "CollectorExporterSendFailing", "ClaudeCodeCostBurnHigh"} <= set(
        rule_health()
    )
    wait_for("every rule evaluated ok", lambda: set(rule_health().values()) == {"ok"}, timeout=30)

    # The dead proxy target: LabScrapeTargetDown goes pending, then fires (for: 15s) with layer 1 ...
    firing = wait_for(
        "LabScrapeTargetDown firing for the proxy", lambda: _alerts(prom, "LabScrapeTargetDown", "firing"), 60
    )
    assert [(a["job"], a["layer"]) for a in firing] == [("proxy", "1")]
    # ... and resolves once the targets file points at something that answers (how faults heal).
    write_targets(server.dir / "targets", {"proxy.json": collector.addr("internal")})
    start = time.monotonic()
    wait_for("LabScrapeTargetDown resolved", lambda: not _alerts(prom, "LabScrapeTargetDown", "firing"), 60)
    assert time.monotonic() - start < 60


def test_web_ui_is_served(start_prometheus) -> None:
    # labctl builds the UI into the binary when Node.js is there (as on the lab's machines and CI).
    from labctl.install.gobuild import stamp_path
    from labctl.install.prometheus import want_ui
    from tests.configs.confhelpers import binary

    if not want_ui():
        pytest.skip("no Node.js here: `labctl install prometheus` builds Prometheus without its web UI")
    stamp = stamp_path(binary("prometheus"))
    if not stamp.is_file():
        pytest.skip(f"{binary('prometheus')} was not built by labctl install (no stamp)")
    assert '"web_ui": "True"' in stamp.read_text(), "the cached Prometheus was built without its web UI"
    server = start_prometheus({})
    page = requests.get(f"{server.url}/query", timeout=5)
    assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
    asset = re.search(r'src="\./(assets/[^"]+\.js)"', page.text)
    assert asset, page.text[:500]
    js = requests.get(f"{server.url}/{asset.group(1)}", timeout=5)
    assert js.status_code == 200 and len(js.content) > 10_000
