"""The event store on real processes: a native module-3 lab (proxy, Collector, Prometheus, VictoriaLogs).

The emulator plays Claude Code-like sessions; every event it sent arrives in VictoriaLogs through the
Collector's logs pipeline (OTLP/HTTP), counted per session — no more, no fewer — with its attributes
as fields and the redacted ones still redacted. The same events, counted by the Collector's count
connector, are metrics in Prometheus: as many api_error per status code as were sent. Malformed logs
are refused or reported by the proxy and never stop the path: a valid event after them is stored.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.checks.layer4 import panel_queries
from labctl.contract.samples import logs_request, session_attrs
from labctl.modelstub.scenario import load_dir
from labctl.state import LabState
from tests.conftest import REPO, labctl_env, run_labctl, started_lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def logsql(lab: LabState, query: str) -> list[dict[str, Any]]:
    resp = requests.post(
        lab.url("victorialogs", "http") + "/select/logsql/query", data={"query": query}, timeout=5
    )
    assert resp.status_code == 200, resp.text
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


def promql(lab: LabState, query: str, *by: str) -> dict[tuple[str, ...], float]:
    """One instant query: {(label values of `by`): value}."""
    resp = requests.get(lab.url("prometheus", "web") + "/api/v1/query", params={"query": query}, timeout=5)
    assert resp.status_code == 200, resp.text
    return {
        tuple(r["metric"].get(k, "") for k in by): float(r["value"][1]) for r in resp.json()["data"]["result"]
    }


def emit(state_dir: Path, marker: str, *args: str) -> dict[str, Any]:
    """`labctl emit --from-lab` tagged with `marker`; its JSON summary, after checking nothing failed."""
    env = labctl_env(OTEL_RESOURCE_ATTRIBUTES=f"lab.marker={marker}")
    cmd = [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "emit", "--from-lab", "--json"]
    run = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary: dict[str, Any] = json.loads(run.stdout)
    (logs,) = [e for e in summary["exporters"] if e["name"].startswith("logs/")]
    assert logs["items_sent"] == summary["events"] > 0 and logs["items_failed"] == 0, summary["exporters"]
    return summary


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("events") / "lab"
    with started_lab("module-3", folder):
        yield folder


def test_every_emulated_event_is_stored_once(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    status = json.loads(run_labctl("status", "--json", state_dir=state_dir).stdout)
    rows = {s["service"]: (s["state"], s["health"]) for s in status["services"]}
    assert rows["victorialogs"] == ("running", "healthy"), rows

    marker = f"events-{secrets.token_hex(4)}"
    env = labctl_env(OTEL_RESOURCE_ATTRIBUTES=f"lab.marker={marker}")
    cmd = [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "emit", "--from-lab"]
    run = subprocess.run(
        [*cmd, "--sessions", "2", "--duration", "6", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    (logs,) = [e for e in summary["exporters"] if e["name"].startswith("logs/")]
    sent = summary["events"]
    assert sent > 0 and logs["items_sent"] == sent and logs["items_failed"] == 0, summary["exporters"]

    def stored() -> dict[str, int]:
        rows = logsql(lab, f'lab.marker:"{marker}" | stats by (session.id) count() n')
        return {r["session.id"]: int(r["n"]) for r in rows}

    # VictoriaLogs makes new rows searchable within about a second: poll until all are there.
    wait_for("every event in VictoriaLogs", lambda: sum(stored().values()) >= sent, timeout=30, interval=0.5)
    per_session = stored()
    assert sum(per_session.values()) == sent, f"stored {per_session}, sent {sent}"
    assert set(per_session) == set(summary["sessions"]), "each session's events, under its session.id"

    # Attributes are fields a student can filter and group on; what the Collector redacts stays so.
    names = {r["event.name"] for r in logsql(lab, f'lab.marker:"{marker}" | stats by (event.name) count() n')}
    assert {"user_prompt", "api_request"} <= names, names
    prompts = logsql(lab, f'lab.marker:"{marker}" event.name:user_prompt | fields prompt')
    assert prompts and all(p.get("prompt") in (None, "", "****") for p in prompts), prompts[:3]


def test_a_cut_event_store_hop_fails_the_check_and_nothing_is_lost_after_heal(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    run_labctl("break", "network", "--hop", "collector-victorialogs", "--mode", "refuse", state_dir=state_dir)
    try:
        res = run_labctl("check", "--layer", "3", "--json", state_dir=state_dir, check=False)
        report = json.loads(res.stdout)
        (row,) = [r for r in report["results"] if r["name"] == "event stored"]
        assert res.returncode == 13 and row["verdict"] == "FAIL", res.stdout
        assert row["playbook"] == "events-not-stored" and "collector → victorialogs" in row["cause"]
        marker = next(e for e in row["evidence"] if "lab.marker" in e).split('lab.marker:"')[1].split('"')[0]
    finally:
        run_labctl("heal", state_dir=state_dir)
    # The Collector's sending queue held the marker's event during the cut: it arrives after heal.
    wait_for(
        "the held event in VictoriaLogs",
        lambda: logsql(lab, f'lab.marker:"{marker}" | stats count() n'),
        timeout=60,
        interval=1,
    )
    res = run_labctl("check", "--layer", "3", "--json", state_dir=state_dir, check=False)
    assert res.returncode == 0, res.stdout


def test_events_become_metrics_as_many_api_errors_per_status_as_were_sent(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    marker = f"counted-{secrets.token_hex(4)}"
    # The retries scenario: a 429 and a 529 before the first answer, a 500 before the second; the emulator
    # reports each failed attempt as an api_error event, and the one tool use (Write) as a tool_decision.
    scenario = load_dir(REPO / "lab" / "scenarios")["retries"]
    sent = Counter(str(fault.status) for turn in scenario.turns for fault in turn.faults)
    assert sent == {"429": 1, "529": 1, "500": 1}
    emit(state_dir, marker, "--scenario", "retries", "--duration", "4")

    sel = f'{{lab_marker="{marker}"}}'
    errors = f"sum by (status_code) (claude_code_api_error_events_total{sel})"

    def counted() -> dict[str, int]:
        return {k[0]: int(v) for k, v in promql(lab, errors, "status_code").items()}

    # Scraped every 5 s: poll until Prometheus has what was sent, then prove it is no more.
    wait_for("the counted api_errors in Prometheus", lambda: counted() == sent, timeout=30, interval=0.5)
    stored = logsql(lab, f'lab.marker:"{marker}" event.name:api_error | stats by (status_code) count() n')
    assert {r["status_code"]: int(r["n"]) for r in stored} == sent  # the same events, in the event store

    # Tool decisions by outcome: the metric and the stored events agree (one Write, allowed by config).
    decisions = promql(
        lab, f"sum by (decision, source) (claude_code_tool_decision_events_total{sel})", "decision", "source"
    )
    stored = logsql(
        lab, f'lab.marker:"{marker}" event.name:tool_decision | stats by (decision, source) count() n'
    )
    assert (
        decisions
        == {(r["decision"], r["source"]): float(r["n"]) for r in stored}
        == {("accept", "config"): 1}
    )

    # The dashboard's count panel (as Grafana would run it over the last hour) counts each status's first
    # event too, which rate() cannot: it equals the raw counters of the whole lab.
    board = json.loads((REPO / "dashboards" / "claude-code-usage.json").read_text())
    (panel,) = [q for t, _, q in panel_queries(board) if t == "API errors by status"]
    raw = promql(lab, "sum by (status_code) (claude_code_api_error_events_total)", "status_code")
    assert promql(lab, panel, "status_code") == raw and raw[("429",)] >= 1


def test_malformed_logs_are_reported_and_the_path_to_the_event_store_keeps_working(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    marker = f"malformed-{secrets.token_hex(4)}"
    url = lab.url("proxy", "otlp_http") + "/v1/logs"
    admin = lab.url("proxy", "admin")

    def post(body: bytes, content_type: str = "application/x-protobuf") -> requests.Response:
        return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=10)

    def event(case: str) -> Any:
        attrs = {**session_attrs(marker), "tool_name": "Edit", "decision": "accept", "source": "hook"}
        resource = {"service.name": "claude-code", "lab.marker": marker}
        return logs_request([("claude_code.tool_decision", {**attrs, "case": case})], resource)

    def dropped() -> int:
        stats = requests.get(admin + "/api/stats", timeout=5).json()
        return int(stats["counters"]["dropped"]["logs"].get("upstream_permanent", 0))

    # Bodies that are not OTLP: refused with 400 naming the problem, so nothing goes further.
    garbage = post(b"\x0a\xff\xff\xff\xff\x0f not protobuf")
    assert garbage.status_code == 400 and b"not a valid protobuf ExportLogsServiceRequest" in garbage.content
    broken = post(b"{not json", "application/json")
    assert broken.status_code == 400 and "body is not valid JSON" in broken.json()["message"]

    # OTLP that decodes but is malformed: accepted (observe mode), reported by the contract.
    was_dropped = dropped()
    bad_id, far_ahead = event("bad-id"), event("far-ahead")
    bad_id.resource_logs[0].scope_logs[0].log_records[0].trace_id = b"\x01\x02\x03"
    far_ahead.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano = (
        time.time_ns() + 365 * 86400 * 10**9
    )
    for request, words in ((bad_id, "trace_id is 3 bytes"), (far_ahead, "365 days ahead of")):
        answer = post(request.SerializeToString())
        assert answer.status_code == 200 and words.encode() in answer.content
    found = {
        rule: requests.get(admin + "/api/violations", params={"rule": rule}, timeout=5).json()["violations"]
        for rule in ("malformed_id", "timestamp_range")
    }
    assert all(v and v[0]["session_id"] == marker for v in found.values()), found

    # Then a valid event: it is stored. The Collector refused the bad id's request (the proxy dropped it
    # for good, counted, instead of retrying it forever); the event store dropped the far-future one.
    assert post(event("valid").SerializeToString()).status_code == 200

    def stored() -> dict[str, int]:
        rows = logsql(lab, f'lab.marker:"{marker}" | stats by (case) count() n')
        return {r["case"]: int(r["n"]) for r in rows}

    wait_for("the valid event in VictoriaLogs", lambda: "valid" in stored(), timeout=30, interval=0.5)
    assert stored() == {"valid": 1}
    assert dropped() == was_dropped + 1
    for service, port in (("collector", "health"), ("victorialogs", "http")):
        path = "/" if service == "collector" else "/health"
        assert requests.get(lab.url(service, port) + path, timeout=5).status_code == 200
