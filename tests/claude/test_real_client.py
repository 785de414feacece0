"""The real Claude Code (the pinned npm package) against a native module-3 lab and its model stub, offline:
what the scenario scripted is what the proxy, the Collector and Prometheus show, over grpc, http/protobuf
and http/json; the contract finds no violation (observe and enforce); prompt text never leaks."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.install.claudecode import resolve
from labctl.modelstub import client
from labctl.modelstub.scenario import Expected, load_dir
from labctl.redact import REDACTED
from labctl.runtimes import get_runtime
from labctl.state import LabState
from tests.conftest import run_labctl, started_lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = load_dir(REPO / "lab" / "scenarios")
PROTOCOLS = ("grpc", "http/protobuf", "http/json")
# Spans the client sends with CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 in a session that runs tools.
SPANS = {
    "claude_code.interaction",
    "claude_code.llm_request",
    "claude_code.tool",
    "claude_code.tool.execution",
}
EVENTS = {
    "claude_code.user_prompt",
    "claude_code.api_request",
    "claude_code.tool_decision",
    "claude_code.tool_result",
}


@pytest.fixture(scope="module")
def claude_installed() -> None:
    """`labctl install claude-code` (cached: a no-op when tests/run-all.sh installed it already)."""
    result = run_labctl("install", "claude-code", check=False, timeout=900)
    if result.returncode != 0:
        message = f"the pinned Claude Code could not be installed:\n{result.stdout}\n{result.stderr}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, claude_installed: None) -> Iterator[LabState]:
    """One native module-3 lab for every run of this file (the sessions are told apart by session.id)."""
    with started_lab("module-3", tmp_path_factory.mktemp("claude") / "lab") as running:
        yield running


@pytest.fixture(scope="module")
def edit_bash_session(lab: LabState) -> Callable[[str], str]:
    """The session id of one `edit-bash` run per protocol, run on first use and shared by the tests."""
    runs: dict[str, str] = {}

    def get(protocol: str) -> str:
        if protocol not in runs:
            runs[protocol] = run_claude(lab, "edit-bash", protocol)
        return runs[protocol]

    return get


def run_claude(lab: LabState, scenario: str, protocol: str = "grpc", *args: str, expect_exit: int = 0) -> str:
    """`labctl claude --scenario ... --traces` with prompts logged by the client; returns the session id."""
    stub_log = lab.data_dir("model-stub") / "requests.jsonl"
    seen = len(stub_log.read_text().splitlines()) if stub_log.exists() else 0
    env = {"OTEL_LOG_USER_PROMPTS": "1", "OTEL_LOG_TOOL_DETAILS": "1"}
    result = run_labctl(
        "claude",
        "--scenario",
        scenario,
        "--protocol",
        protocol,
        "--traces",
        *args,
        state_dir=lab.dir,
        check=False,
        timeout=180,
        env={**os.environ, "COLUMNS": "200", **env},
    )
    assert result.returncode == expect_exit, (
        f"claude exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    answered = [json.loads(line) for line in stub_log.read_text().splitlines()[seen:]]
    sessions = {
        r["session"] for r in answered if r["scenario"] == scenario and r["kind"] in ("turn", "fault")
    }
    assert len(sessions) == 1, f"expected one client session at the stub, got {sessions}"
    return sessions.pop()


def proxy_session(lab: LabState, session: str, expected: Expected) -> dict[str, Any]:
    """The proxy's analytics for the session, once every scripted request has been reported."""

    def ready() -> dict[str, Any] | None:
        out = run_labctl("proxy", "sessions", "--json", state_dir=lab.dir).stdout
        found = next((s for s in json.loads(out) if s["session_id"] == session), None)
        if (
            found
            and found["api_requests"] == expected.api_requests
            and found["api_errors"] == expected.api_errors
            and found["sessions_started"] == 1
        ):
            return found
        return None

    return wait_for(f"the proxy to report session {session}", ready, timeout=60)


def prom(lab: LabState, query: str) -> dict[str, float]:
    """One instant query: {label value (or "value"): number}, zeros left out (as in the expectations)."""
    resp = requests.get(lab.url("prometheus", "web") + "/api/v1/query", params={"query": query}, timeout=10)
    resp.raise_for_status()
    result = resp.json()["data"]["result"]
    return {
        "/".join(r["metric"].values()) or "value": float(r["value"][1])
        for r in result
        if float(r["value"][1])
    }


def prometheus_totals(lab: LabState, session: str) -> dict[str, Any]:
    sel = f'session_id="{session}"'
    return {
        "tokens": prom(lab, f"sum by (type) (claude_code_token_usage_tokens_total{{{sel}}})"),
        "lines": prom(lab, f"sum by (type) (claude_code_lines_of_code_count_total{{{sel}}})"),
        "sessions": prom(lab, f"sum(claude_code_session_count_total{{{sel}}})"),
        "edit_decisions": prom(
            lab, f"sum by (decision) (claude_code_code_edit_tool_decision_total{{{sel}}})"
        ),
        # Events counted into metrics by the Collector (collector-configs/base.yaml `count/events`).
        "tool_decisions": prom(lab, f"sum by (decision) (claude_code_tool_decision_events_total{{{sel}}})"),
        "api_errors": prom(lab, f"sum(claude_code_api_error_events_total{{{sel}}})"),
    }


def expected_prometheus(expected: Expected) -> dict[str, Any]:
    lines = {"added": expected.lines_added, "removed": expected.lines_removed}
    return {
        "tokens": {k: float(v) for k, v in expected.tokens.items() if v},
        "lines": {k: float(v) for k, v in lines.items() if v},
        "sessions": {"value": 1.0},
        "edit_decisions": {k: float(v) for k, v in expected.edit_decisions.items()},
        "tool_decisions": {k: float(v) for k, v in expected.decisions.items()},
        "api_errors": {"value": float(expected.api_errors)} if expected.api_errors else {},
    }


def assert_scripted_figures(lab: LabState, scenario: str, session: str) -> dict[str, Any]:
    expected = SCENARIOS[scenario].expected()
    found = proxy_session(lab, session, expected)
    assert {k: v for k, v in found["tokens"].items() if v} == {k: v for k, v in expected.tokens.items() if v}
    assert (found["lines_added"], found["lines_removed"]) == (expected.lines_added, expected.lines_removed)
    assert found["edit_decisions"] == expected.edit_decisions
    assert found["tool_decisions"] == expected.decisions
    want = expected_prometheus(expected)
    seen: list[dict[str, Any]] = []

    def settled() -> bool:
        seen.append(prometheus_totals(lab, session))
        return seen[-1] == want

    deadline = time.monotonic() + 60
    while not settled() and time.monotonic() < deadline:
        time.sleep(1)
    assert seen[-1] == want, f"Prometheus (left) differs from the scenario's figures (right) for {session}"
    return found


def records_of(lab: LabState, session: str) -> list[dict[str, Any]]:
    path = lab.data_dir("proxy") / "inspect" / "records.jsonl"
    return [r for line in path.read_text().splitlines() if session in line for r in [json.loads(line)]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_scripted_session_adds_up_everywhere(
    lab: LabState, edit_bash_session: Callable[[str], str], protocol: str
) -> None:
    session = edit_bash_session(protocol)
    assert (lab.dir / "claude" / "work" / "edit-bash" / "greet.py").read_text().startswith("def greet():")
    assert_scripted_figures(lab, "edit-bash", session)

    # Events and spans, as the proxy received them.
    names = {r["name"] for r in records_of(lab, session)}
    assert {e.removeprefix("claude_code.") for e in EVENTS} <= names, names
    assert SPANS <= names, f"spans missing at the proxy: {SPANS - names}"

    # ... and at the Collector: the events in its logs pipeline, the spans counted by its receiver.
    def collector_has_events() -> bool:
        text = lab.log_path("collector").read_text(errors="replace")
        return session in text and all(e in text for e in EVENTS)

    wait_for("the session's events in the Collector's log", collector_has_events, timeout=30)
    internal = requests.get(lab.url("collector", "internal") + "/metrics", timeout=10).text
    accepted = [
        line
        for line in internal.splitlines()
        if line.startswith("otelcol_receiver_accepted_spans") and not line.endswith(" 0")
    ]
    assert accepted, "the Collector's receiver accepted no spans"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_contract_finds_no_violation_in_the_real_client(
    lab: LabState, edit_bash_session: Callable[[str], str], protocol: str
) -> None:
    session = edit_bash_session(protocol)
    found = proxy_session(lab, session, SCENARIOS["edit-bash"].expected())
    bad = [(r["name"], v) for r in records_of(lab, session) for v in r.get("violations") or []]
    assert not bad, f"{len(bad)} contract violations on the real client's records, e.g. {bad[:6]}"
    assert found["violations"] == 0


def test_a_subagent_on_another_model(lab: LabState) -> None:
    session = run_claude(lab, "subagent")
    found = assert_scripted_figures(lab, "subagent", session)
    assert found["models"] == ["claude-haiku-5-5", "claude-opus-5-5"]
    by_model = prom(lab, f'sum by (model) (claude_code_token_usage_tokens_total{{session_id="{session}"}})')
    assert by_model == {"claude-haiku-5-5": 700 + 15 + 1400, "claude-opus-5-5": 1360 + 90 + 2600 + 2690}
    assert found["violations"] == 0


def test_retried_faults_and_an_exhausted_retry_budget(lab: LabState) -> None:
    # 429 (retry-after), 529 and 500, each retried by the client until the scripted answer comes.
    retried = run_claude(lab, "retries")
    assert_scripted_figures(lab, "retries", retried)
    stub_log = (lab.data_dir("model-stub") / "requests.jsonl").read_text().splitlines()
    faults = [json.loads(x)["status"] for x in stub_log if retried in x and '"fault"' in x]
    assert faults == [429, 529, 500]

    # The budget runs out (max_retries: 1): the client gives up and reports one api_error.
    failed = run_claude(lab, "api-errors", expect_exit=1)
    proxy_session(lab, failed, SCENARIOS["api-errors"].expected())
    errors = [r for r in records_of(lab, failed) if r["name"] == "api_error"]
    assert [(e["attributes"]["status_code"], e["attributes"]["attempt"]) for e in errors] == [(529, 2)]
    # The Collector counted that event: one api_error with status 529 in Prometheus (the retried
    # session above sent none: its retries ended in answers).
    counted = f'sum by (status_code) (claude_code_api_error_events_total{{session_id="{failed}"}})'
    wait_for("the counted api_error in Prometheus", lambda: prom(lab, counted) == {"529": 1.0}, timeout=30)


def test_enforce_mode_drops_nothing_of_the_real_client(lab: LabState) -> None:
    runtime = get_runtime(LabState.load(lab.dir))
    runtime.set_overrides("proxy", env={"LAB_PROXY_MODE": "enforce"})
    try:
        session = run_claude(lab, "hello-write", "http/json")
        # Enforce mode drops what violates the contract: the totals prove nothing was dropped.
        found = assert_scripted_figures(lab, "hello-write", session)
        assert found["violations"] == 0
        stats = requests.get(lab.url("proxy", "admin") + "/api/stats", timeout=10).json()
        assert stats["mode"] == "enforce"
    finally:
        get_runtime(LabState.load(lab.dir)).set_overrides("proxy")


def test_prompt_text_never_appears_unredacted(lab: LabState) -> None:
    session = run_claude(lab, "hello-write", "grpc")
    prompts = {s.prompt for s in SCENARIOS.values()}
    leaks: list[str] = []

    # Every file the lab wrote: logs (the Collector's too), records, the stub's log, Prometheus' TSDB and
    # WAL. Not the client's own home (claude/: its transcripts are the client's, not the lab's), and not
    # the proxy's spool: the forwarding buffer holds payloads exactly as received until the Collector
    # has them (nothing lost), like the Collector's own queue, readable by the lab's user only; the
    # Collector masks them before its log and its stores.
    for path in lab.dir.rglob("*"):
        if (
            path.is_file()
            and "claude" not in path.relative_to(lab.dir).parts[:1]
            and not path.name.startswith("spool.sqlite")
        ):
            data = path.read_bytes()
            leaks += [f"{path}: {p!r}" for p in prompts if p.encode() in data]

    # Every page and API of the proxy, and its exports.
    admin = lab.url("proxy", "admin")
    pages = [
        "/",
        "/api/overview",
        "/api/payloads",
        "/api/sessions",
        "/api/violations",
        "/api/export",
        "/api/export?what=violations",
        "/api/stats",
        "/metrics",
    ]
    listed = requests.get(admin + "/api/payloads?limit=1000", timeout=10).json()["payloads"]
    assert listed, "the proxy lists no payloads"
    pages += [f"/api/payloads/{p['id']}" for p in listed]
    for page in pages:
        text = requests.get(admin + page, timeout=10).text
        leaks += [f"{page}: {p!r}" for p in prompts if p in text]
    for fmt in ("json", "csv"):
        text = run_labctl("proxy", "export", "--format", fmt, state_dir=lab.dir).stdout
        leaks += [f"proxy export {fmt}: {p!r}" for p in prompts if p in text]

    # The stores: the event store compresses what it keeps and the trace store keeps it in memory, so
    # the files above cannot show a leak there: ask each for the session, once its records have arrived.
    def stored_events() -> str | None:
        resp = requests.post(
            lab.url("victorialogs", "http") + "/select/logsql/query",
            data={"query": f'session.id:"{session}" event.name:user_prompt'},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return resp.text if resp.text.strip() else None

    def stored_spans() -> str | None:
        resp = requests.get(
            lab.url("jaeger", "query") + "/api/traces",
            params={"service": "claude-code", "tags": json.dumps({"session.id": session}), "limit": "100"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return resp.text if resp.json().get("data") else None

    for store, probe in (("victorialogs", stored_events), ("jaeger", stored_spans)):
        text = wait_for(f"the session's records in {store}", probe, timeout=30, interval=0.5)
        leaks += [f"{store}: {p!r}" for p in prompts if p in text]
    assert not leaks, "prompt text leaked:\n" + "\n".join(leaks)
    # The prompt attribute is there (OTEL_LOG_USER_PROMPTS=1), holding the lab's placeholder.
    events = [r for r in records_of(lab, session) if r["name"] == "user_prompt"]
    assert events and all(e["attributes"].get("prompt") == REDACTED for e in events), events


def jaeger_spans(lab: LabState, tags: dict[str, str]) -> list[str]:
    """The operation names of the spans of every trace Jaeger finds with these tags."""
    resp = requests.get(
        lab.url("jaeger", "query") + "/api/traces",
        params={"service": "claude-code", "tags": json.dumps(tags), "limit": "100"},
        timeout=10,
    )
    resp.raise_for_status()
    return [span["operationName"] for trace in resp.json()["data"] for span in trace["spans"]]


def test_a_client_configured_only_by_labctl_env_stores_all_three_signals(lab: LabState) -> None:
    """What a student does in module 3: paste `labctl env` into a shell, run `claude -p`. No --traces,
    no variable of labctl claude's: the block alone must put the spans in Jaeger, the events in
    VictoriaLogs and the metrics in Prometheus."""
    block = run_labctl("env", state_dir=lab.dir).stdout
    assert "export OTEL_TRACES_EXPORTER=otlp" in block, block
    # Only the client's sandbox comes from labctl: its own HOME and settings (onboarding done), the
    # scenario's command line, and no traffic but the model's and OTLP's (this machine is offline).
    # The stub plays its default scenario, as for a student's `claude`.
    prepared = client.prepare(lab, resolve(), "hello-write", [], base_env={})
    sandbox = {
        "PATH": os.environ["PATH"],
        **{k: prepared.env[k] for k in ("HOME", "CLAUDE_CONFIG_DIR")},
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    assert not [k for k in sandbox if k.startswith(("OTEL_", "ANTHROPIC_"))]
    stub_log = lab.data_dir("model-stub") / "requests.jsonl"
    seen = len(stub_log.read_text().splitlines()) if stub_log.exists() else 0
    result = subprocess.run(
        ["bash", "-c", block + '\nexec "$@"', "claude-with-the-block", *prepared.cmd],
        env=sandbox,
        cwd=prepared.workdir,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"claude exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    answered = [json.loads(line) for line in stub_log.read_text().splitlines()[seen:]]
    sessions = {r["session"] for r in answered if r["scenario"] == "hello-write" and r["kind"] == "turn"}
    assert len(sessions) == 1, f"expected one client session at the stub, got {sessions}"
    session = sessions.pop()

    # Metrics: the scripted figures at the proxy and in Prometheus.
    (model,) = assert_scripted_figures(lab, "hello-write", session)["models"]
    # Spans: in Jaeger, found by the session's tag, one of each kind the scenario makes.
    wanted = {
        "claude_code.interaction",
        "claude_code.llm_request",
        "claude_code.tool",
        "claude_code.tool.execution",
    }
    names = wait_for(
        "the session's spans in Jaeger",
        lambda: (found := jaeger_spans(lab, {"session.id": session})) and wanted <= set(found) and found,
        timeout=30,
        interval=0.5,
    )
    assert names.count("claude_code.interaction") == 1 and names.count("claude_code.llm_request") == 2, names
    # The tags Jaeger's page (lab/jaeger/ui/index.html) gives as examples find this client's spans too.
    for example in ({"tool_name": "Write"}, {"gen_ai.request.model": model}):
        assert sorted(jaeger_spans(lab, {"session.id": session, **example})) == sorted(names), example

    # Events: in VictoriaLogs, by the same session id.
    def stored_events() -> set[str] | None:
        resp = requests.post(
            lab.url("victorialogs", "http") + "/select/logsql/query",
            data={"query": f'session.id:"{session}"'},
            timeout=10,
        )
        resp.raise_for_status()
        found = {json.loads(line).get("event.name") for line in resp.text.splitlines() if line.strip()}
        return found if {e.removeprefix("claude_code.") for e in EVENTS} <= found else None

    wait_for("the session's events in VictoriaLogs", stored_events, timeout=30, interval=0.5)
