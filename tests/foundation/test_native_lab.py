"""The native lab, for real: `labctl up module-3` runs the proxy, the lab's Collector and Prometheus as
detached processes; OpenTelemetry SDK data sent to the Collector shows up in Prometheus and in the
Collector's logs pipeline; `labctl down` leaves nothing behind."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import psutil
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter, MetricExportResult
from opentelemetry.sdk.resources import Resource

from labctl import promql
from labctl.errors import LabError
from labctl.install import resolve_binary
from labctl.runtimes import collector_slot, get_runtime, process
from labctl.runtimes.ports import port_in_use
from labctl.state import LabState
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RESOURCE = Resource.create({"service.name": "claude-code", "service.version": "2.0.0-test"})


def send_token_usage(exporter: MetricExporter, session: str, tokens: int) -> None:
    """Record Claude Code's token counter with the SDK and export it once through `exporter`."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    counter = provider.get_meter("com.anthropic.claude_code").create_counter(
        "claude_code.token.usage", unit="tokens", description="Number of tokens used"
    )
    counter.add(tokens, {"type": "input", "model": "claude-test", "session.id": session})
    data = reader.get_metrics_data()
    assert data is not None
    result = exporter.export(data, timeout_millis=10_000)
    exporter.shutdown()
    provider.shutdown()
    assert result is MetricExportResult.SUCCESS, f"the Collector did not accept the export ({result})"


def records(lab: LabState) -> dict[str, process.ProcRecord]:
    out = {}
    for service in (
        "proxy",
        "model-stub",
        "collector",
        "otlp-relay",
        "prometheus",
        "scrape-relay",
        "query-relay",
        "grafana",
        "victorialogs",
        "events-relay",
        "jaeger",
        "traces-relay",
    ):
        rec = process.read_record(lab.pid_path(service))
        if rec is not None and rec.alive():
            out[service] = rec
    return out


def status_json(labctl, state_dir: Path) -> dict:
    return json.loads(labctl("status", "--json", state_dir=state_dir).stdout)


def test_module_3_metrics_over_grpc_and_http_and_events_reach_the_pipeline(native_lab, labctl):
    lab = native_lab("module-3")
    status = status_json(labctl, lab.dir)
    assert status["stage"] == "module-3" and status["runtime"] == "native"
    assert {s["service"]: (s["state"], s["health"]) for s in status["services"]} == {
        "proxy": ("running", "healthy"),
        "model-stub": ("running", "healthy"),  # the model the real Claude Code talks to (every module)
        "collector": ("running", "healthy"),
        "otlp-relay": ("running", "healthy"),  # the proxy's way to the Collector natively
        "prometheus": ("running", "healthy"),
        "scrape-relay": ("running", "healthy"),  # Prometheus' way to the Collector natively
        "victorialogs": ("running", "healthy"),  # the event store: the Collector exports events to it
        "events-relay": ("running", "healthy"),  # the Collector's way to the event store natively
        "jaeger": ("running", "healthy"),  # the trace store: the Collector exports spans to it
        "traces-relay": ("running", "healthy"),  # the Collector's way to the trace store natively
    }

    run = uuid.uuid4().hex[:8]
    send_token_usage(
        GrpcMetricExporter(endpoint=lab.addr("collector", "otlp_grpc"), insecure=True), f"grpc-{run}", 120
    )
    send_token_usage(
        HttpMetricExporter(endpoint=lab.url("collector", "otlp_http") + "/v1/metrics"), f"http-{run}", 75
    )

    prom = promql.client(lab.url("prometheus", "web"))
    for session, tokens in ((f"grpc-{run}", 120), (f"http-{run}", 75)):
        query = f'claude_code_token_usage_tokens_total{{session_id="{session}"}}'
        series = wait_for(f"{query} in Prometheus", lambda q=query: prom.custom_query(q))
        assert float(series[0]["value"][1]) == tokens
        assert series[0]["metric"]["type"] == "input" and series[0]["metric"]["job"] == "collector"

    # Prometheus scrapes the Collector's own telemetry too (file_sd targets written by labctl).
    def jobs_up() -> dict[str, str] | None:
        up = {t["metric"]["job"]: t["value"][1] for t in prom.get_current_metric_value("up")}
        return (
            up if all(up.get(job) == "1" for job in ("collector", "otelcol", "proxy", "prometheus")) else None
        )

    wait_for("every scrape job up (collector, otelcol, proxy, prometheus)", jobs_up, timeout=30)

    # A Claude Code event as an OTLP log: the logs pipeline's debug exporter prints it in the Collector log.
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(GrpcLogExporter(endpoint=lab.addr("collector", "otlp_grpc"), insecure=True))
    )
    provider.get_logger("com.anthropic.claude_code.events").emit(
        body="claude_code.api_request",
        event_name="claude_code.api_request",
        severity_number=SeverityNumber.INFO,
        attributes={"event.name": "api_request", "lab.marker": f"event-{run}", "cost_usd": 0.0123},
    )
    provider.shutdown()
    log = lab.log_path("collector")
    wait_for(f"event-{run} in {log}", lambda: f"event-{run}" in log.read_text(), timeout=30, interval=0.5)
    shown = labctl("logs", "collector", "--lines", "400", state_dir=lab.dir).stdout
    assert f"event-{run}" in shown and "claude_code.api_request" in shown

    # Down from another invocation: no process and no port left.
    pids = records(lab)
    assert set(pids) == {"proxy", "model-stub", "collector", "otlp-relay", "prometheus", "scrape-relay"} | {
        "victorialogs",
        "events-relay",
        "jaeger",
        "traces-relay",
    }
    labctl("down", state_dir=lab.dir)
    assert not [s for s, rec in pids.items() if rec.alive()]
    assert not [p for ports in lab.ports.values() for p in ports.values() if port_in_use(p)]
    assert not LabState.exists(lab.dir)
    assert status_json(labctl, lab.dir)["running"] is False


def test_up_is_additive_and_idempotent_and_down_works_from_another_invocation(native_lab, labctl):
    lab = native_lab("module-1")
    first = records(lab)
    assert set(first) == {"proxy", "model-stub"}

    lab = native_lab("module-2")
    second = records(lab)
    assert set(second) == {"proxy", "model-stub", "collector", "otlp-relay"}
    assert second["model-stub"].pid == first["model-stub"].pid  # its configuration does not change
    # The proxy gained its upstream (the Collector), so it was restarted with the new environment.
    assert second["proxy"].pid != first["proxy"].pid

    lab = native_lab("module-3")
    third = records(lab)
    assert set(third) == {
        "proxy",
        "model-stub",
        "collector",
        "otlp-relay",
        "prometheus",
        "scrape-relay",
        "victorialogs",
        "events-relay",
        "jaeger",
        "traces-relay",
    }
    # The Collector restarts once: from module-3 its logs pipeline also exports to the event store
    # (lab.yaml env_when_running.victorialogs). The proxy's configuration does not change.
    assert third["collector"].pid != second["collector"].pid and third["proxy"].pid == second["proxy"].pid

    # Idempotent: nothing restarts. (--json: stdout is exactly the status document.)
    doc = json.loads(labctl("up", "module-3", "--runtime", "native", "--json", state_dir=lab.dir).stdout)
    assert doc["stage"] == "module-3"
    assert {s["service"]: s["health"] for s in doc["services"]} == dict.fromkeys(third, "healthy")
    again = records(lab)
    assert {s: r.pid for s, r in again.items()} == {s: r.pid for s, r in third.items()}

    # module-4 natively: Grafana runs only where its binary can be had; otherwise status says so plainly.
    lab = native_lab("module-4")
    rows = {s["service"]: s for s in status_json(labctl, lab.dir)["services"]}
    grafana = rows["grafana"]
    # Grafana's way to Prometheus natively, with or without Grafana: its own process, not the scrape relay.
    assert (rows["query-relay"]["state"], rows["query-relay"]["health"]) == ("running", "healthy")
    fourth_up = records(lab)
    assert fourth_up["query-relay"].pid != fourth_up["scrape-relay"].pid
    try:
        resolve_binary("grafana")
        assert grafana["state"] == "running" and grafana["health"] == "healthy"
    except LabError:
        assert grafana["state"] == "not available"
        # One line, both ways to get it: the binary, or the Docker runtime with its image.
        assert (
            "`labctl install grafana`" in grafana["detail"] and "Docker (image grafana/" in grafana["detail"]
        )
    assert {s: r.pid for s, r in records(lab).items() if s not in ("grafana", "query-relay")} == {
        s: r.pid for s, r in third.items()
    }

    lab = native_lab("module-2")  # going down a stage stops the layers above only
    fourth = records(lab)
    assert set(fourth) == {"proxy", "model-stub", "collector", "otlp-relay"}
    assert not third["prometheus"].alive() and not third["scrape-relay"].alive()
    assert not third["victorialogs"].alive() and not third["events-relay"].alive()
    assert not third["jaeger"].alive() and not third["traces-relay"].alive()
    assert not fourth_up["query-relay"].alive()
    assert not [p for p in lab.ports["query-relay"].values() if port_in_use(p)], (
        "the query relay's ports stay held"
    )
    # The Collector restarts: without the event store its logs pipeline drops that exporter (lab.yaml
    # env_when_running), and a Collector reads its pipelines only at start.
    assert fourth["collector"].pid != third["collector"].pid
    assert LabState.load(lab.dir).stage == "module-2"

    labctl("down", state_dir=lab.dir)
    assert not [s for s, rec in fourth.items() if rec.alive()]


def test_overrides_are_persisted_and_applied_by_restarting_the_service(native_lab, tmp_path):
    lab = native_lab("module-2")
    before = records(lab)["collector"]
    overlay = tmp_path / "detailed-metrics.yaml"
    overlay.write_text("exporters:\n  debug:\n    verbosity: detailed\n")

    runtime = get_runtime(LabState.load(lab.dir))
    runtime.set_overrides("collector", extra_configs=[overlay], env={"LAB_TEST_OVERRIDE": "on"})
    after = records(lab)["collector"]
    assert after.pid != before.pid  # a new env needs a new process
    slot = collector_slot.slot_paths(lab.dir)
    assert after.cmd[-4:] == collector_slot.config_args([str(p) for p in slot]) == before.cmd[-4:]
    assert "verbosity: detailed" in slot[1].read_text()
    assert psutil.Process(after.pid).environ().get("LAB_TEST_OVERRIDE") == "on"
    assert LabState.load(lab.dir).overrides["collector"]["extra_configs"] == [str(overlay)]

    # The merged overlay is live: the metrics pipeline's debug exporter now prints metric names.
    send_token_usage(
        GrpcMetricExporter(endpoint=lab.addr("collector", "otlp_grpc"), insecure=True), "override", 1
    )
    log = lab.log_path("collector")
    wait_for(
        "a detailed metric dump in the collector log",
        lambda: "claude_code.token.usage" in log.read_text().split("=== labctl")[-1],
        timeout=20,
        interval=0.5,
    )

    runtime.set_overrides("collector")  # clearing restores the base configuration
    restored = records(lab)["collector"]
    assert restored.cmd == before.cmd and not LabState.load(lab.dir).overrides
    assert [p.read_text() for p in slot] == ["{}\n", "{}\n"]

    # Configs alone (no env): the same process reloads them on SIGHUP, in place.
    up_since = runtime.collector_up_since()
    runtime.set_overrides("collector", extra_configs=[overlay])
    assert records(lab)["collector"].pid == restored.pid
    assert runtime.collector_up_since() not in (None, up_since)
    runtime.set_overrides("collector")
    assert records(lab)["collector"].pid == restored.pid

    # A broken configuration: the start fails with the service's own words and the next step.
    broken = tmp_path / "broken.yaml"
    broken.write_text("exporters:\n  nosuchexporter: {}\n")
    with pytest.raises(LabError) as err:
        runtime.set_overrides("collector", extra_configs=[broken])
    assert "collector exited while starting" in err.value.message
    assert "nosuchexporter" in err.value.message  # the tail of the collector's log
    assert "labctl logs collector" in (err.value.hint or "")
    runtime.set_overrides("collector")
    assert records(lab)["collector"].alive()


def test_up_install_builds_a_missing_collector_then_starts_it(labctl, lab_state_dir, tmp_path):
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABCTL_")}
    env.update(LABCTL_CACHE_DIR=str(cache), COLUMNS="200", LABCTL_HEALTH_TIMEOUT="90")
    result = labctl(
        "up",
        "module-2",
        "--runtime",
        "native",
        "--free-ports",
        "--install",
        state_dir=lab_state_dir,
        env=env,
        timeout=900,
    )
    assert "otelcol-lab is missing: running `labctl install collector`" in result.stdout
    built = cache / "bin" / "otelcol-lab"
    assert built.is_file()
    collector = process.read_record(lab_state_dir / "services" / "collector" / "collector.pid")
    assert collector is not None and collector.alive() and collector.cmd[0] == str(built)
    # With Go at hand the proxy's Go gRPC front is built too, and the proxy serves gRPC with it.
    assert (cache / "bin" / "labctl-grpc-front").is_file()
    proxy_log = LabState.load(lab_state_dir).log_path("proxy")
    wait_for("the proxy's word on its gRPC front", lambda: "served by the go front" in proxy_log.read_text())


def test_down_after_labctl_was_killed_mid_up_leaves_no_process_behind(labctl, lab_state_dir):
    """kill -9 of `labctl up module-3` while it waits for its services (the scrape relay among them):
    `labctl down` from another invocation still finds every process by its pid file."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO, labctl_env

    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labctl",
            "--state-dir",
            str(lab_state_dir),
            "--runtime",
            "native",
            "up",
            "module-3",
            "--free-ports",
        ],
        cwd=REPO,
        env=labctl_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    relay_pid = lab_state_dir / "services" / "scrape-relay" / "scrape-relay.pid"
    deadline = time.monotonic() + 60
    while not relay_pid.exists() and up.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert relay_pid.exists(), "labctl up never started the scrape relay"
    up.send_signal(signal.SIGKILL)  # mid-way: the services are starting, nothing waits for them any more
    up.wait(10)
    started = [
        rec
        for s in ("proxy", "model-stub", "collector", "otlp-relay", "prometheus", "scrape-relay")
        if (rec := process.read_record(lab_state_dir / "services" / s / f"{s}.pid")) is not None
    ]
    assert any("labctl.faults.relay" in r.cmd for r in started)
    ports = [p for named in LabState.load(lab_state_dir).ports.values() for p in named.values()]
    labctl("down", state_dir=lab_state_dir)
    assert not [r.cmd[:3] for r in started if r.alive()], "a process outlived `labctl down`"
    assert not [p for p in ports if port_in_use(p)], "a port is still held after `labctl down`"
    assert not LabState.exists(lab_state_dir), "down removes the lab's state"
