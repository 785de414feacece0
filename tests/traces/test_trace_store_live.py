"""The trace store on real processes: one native module-3 lab (proxy, Collector, Prometheus, VictoriaLogs,
Jaeger) for the file.

The emulator plays Claude Code-like sessions with the enhanced telemetry beta on (spans); every span it
sent arrives in Jaeger through the Collector's traces pipeline (OTLP/HTTP): the same number per span
name, each trace whole (one interaction root, every parent present), searchable by session.id. A cut
of the collector → jaeger hop fails `labctl check` with its playbook, and after heal the check is green
again. Malformed spans are reported by the proxy's contract and never stop Jaeger's path.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from labctl.contract.samples import key_values, session_attrs
from labctl.state import LabState
from tests.conftest import REPO, labctl_env, run_labctl, started_lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def jaeger_spans(lab: LabState, tags: dict[str, str]) -> list[dict[str, Any]]:
    """Every span of every trace Jaeger finds for these tags (the query API the UI and Grafana use)."""
    now_us = int(time.time() * 1e6)
    resp = requests.get(
        lab.url("jaeger", "query") + "/api/traces",
        params={
            "service": "claude-code",
            "tags": json.dumps(tags),
            "limit": "1000",
            "start": str(now_us - 3_600_000_000),
            "end": str(now_us + 60_000_000),
        },
        timeout=5,
    )
    assert resp.status_code == 200, resp.text[:300]
    return [{**span, "_trace": t["traceID"]} for t in resp.json()["data"] or [] for span in t["spans"]]


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span.get("tags") or [] if t["key"] == key), None)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("traces") / "lab"
    with started_lab("module-3", folder):
        yield folder


def test_every_emulated_span_is_stored_once_and_each_trace_whole(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    status = json.loads(run_labctl("status", "--json", state_dir=state_dir).stdout)
    rows = {s["service"]: (s["state"], s["health"]) for s in status["services"]}
    assert rows["jaeger"] == ("running", "healthy") and rows["traces-relay"] == ("running", "healthy"), rows

    marker = f"traces-{secrets.token_hex(4)}"
    # No tracing variable of our own: from module 3 on, the `labctl env` block that --from-lab applies
    # switches the spans on (the enhanced telemetry beta), as it does for a real Claude Code.
    env = labctl_env(OTEL_RESOURCE_ATTRIBUTES=f"lab.marker={marker}")
    cmd = [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "emit", "--from-lab"]
    run = subprocess.run(
        [*cmd, "--sessions", "2", "--duration", "6", "--rate", "20", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    (traces,) = [e for e in summary["exporters"] if e["name"].startswith("traces/")]
    sent: dict[str, int] = traces["items_by_name"]
    assert traces["items_failed"] == 0 and sum(sent.values()) == traces["items_sent"] > 0, traces
    # Tool spans come only with a tool call, which the random session may not make in 6 s under load;
    # when it does, they are held to the same counts below.
    assert {"claude_code.interaction", "claude_code.llm_request"} <= set(sent), sent

    def stored() -> list[dict[str, Any]]:
        return jaeger_spans(lab, {"lab.marker": marker})

    wait_for("every span in Jaeger", lambda: len(stored()) >= traces["items_sent"], timeout=30, interval=0.5)
    spans = stored()
    assert Counter(s["operationName"] for s in spans) == Counter(sent), "per span name: stored == sent"

    # One trace per prompt, whole: one interaction root, and every parent a span of the same trace.
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_trace.setdefault(span["_trace"], []).append(span)
    assert len(by_trace) == sent["claude_code.interaction"]
    for trace_id, members in by_trace.items():
        ids = {s["spanID"] for s in members}
        roots = [s for s in members if not s.get("references")]
        assert [r["operationName"] for r in roots] == ["claude_code.interaction"], trace_id
        assert all(ref["spanID"] in ids for s in members for ref in s.get("references") or []), trace_id

    # The join key a student uses from Prometheus' session_id and VictoriaLogs' session.id.
    for session in summary["sessions"]:
        own = jaeger_spans(lab, {"session.id": session, "lab.marker": marker})
        assert own and all(tag(s, "gen_ai.conversation.id") == session for s in own), session
    assert sum(len(jaeger_spans(lab, {"session.id": s})) for s in summary["sessions"]) == len(spans)
    _the_native_page_finds_them(lab, summary["sessions"][0])


class _Page(HTMLParser):
    """The links (by id) and the search form (action and fields) of lab/jaeger/ui/index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("id"):
            self.links[a["id"]] = a["href"]
        elif tag == "form":
            self.action = a["action"]
        elif tag == "input" and self.action is not None:
            self.fields[a["name"]] = a.get("value", "")


def _the_native_page_finds_them(lab: LabState, session: str) -> None:
    """Natively Jaeger has no web UI: its page says so, and what it offers instead works: every link
    answers, and its search form, with a session id typed in, finds that session's traces."""
    base = lab.url("jaeger", "query") + "/"
    page = requests.get(base, timeout=5)
    assert page.status_code == 200 and "no Jaeger web UI" in page.text, page.text[:300]
    parsed = _Page()
    parsed.feed(page.text)
    answers = {name: requests.get(base + href, timeout=5) for name, href in parsed.links.items()}
    assert set(answers) == {"services", "operations", "newest", "slow"}
    assert all(a.status_code == 200 for a in answers.values()), {k: a.text[:200] for k, a in answers.items()}
    assert "claude-code" in answers["services"].json()["data"]
    assert "claude_code.interaction" in answers["operations"].json()["data"]
    assert answers["newest"].json()["data"], "the newest traces: none"

    assert parsed.action == "api/traces" and set(parsed.fields) == {"service", "tags", "minDuration", "limit"}
    typed = {**parsed.fields, "tags": json.dumps({"session.id": session})}
    found = requests.get(base + parsed.action, params=typed, timeout=5)
    assert found.status_code == 200, found.text[:300]
    spans = [s for t in found.json()["data"] for s in t["spans"]]
    assert spans and all(tag(s, "session.id") == session for s in spans), spans[:2]
    assert len(spans) == len(jaeger_spans(lab, {"session.id": session}))


def test_a_cut_trace_store_hop_fails_the_check_and_heal_makes_it_green(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    run_labctl("break", "network", "--hop", "collector-jaeger", "--mode", "refuse", state_dir=state_dir)
    try:
        res = run_labctl("check", "--layer", "3", "--json", state_dir=state_dir, check=False)
        report = json.loads(res.stdout)
        (row,) = [r for r in report["results"] if r["name"] == "trace stored"]
        assert res.returncode == 13 and row["verdict"] == "FAIL", res.stdout
        assert row["playbook"] == "traces-not-stored" and "collector → jaeger" in row["cause"]
        (events,) = [r for r in report["results"] if r["name"] == "event stored"]
        assert events["verdict"] == "ok", "only the cut hop fails"
        marker = (
            next(e for e in row["evidence"] if "lab.marker" in e).split('"lab.marker":"')[1].split('"')[0]
        )
    finally:
        run_labctl("heal", state_dir=state_dir)
    # The Collector's sending queue held the marker's span during the cut: it arrives after heal.
    wait_for("the held span in Jaeger", lambda: jaeger_spans(lab, {"lab.marker": marker}), timeout=60)
    res = run_labctl("check", "--layer", "3", "--json", state_dir=state_dir, check=False)
    assert res.returncode == 0, res.stdout


def spans_request(marker: str, case: str, trace_id: bytes) -> ExportTraceServiceRequest:
    """One claude_code.interaction span as Claude Code sends a prompt's root span."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(key_values({"service.name": "claude-code", "lab.marker": marker}))
    ss = rs.scope_spans.add()
    ss.scope.name = "com.anthropic.claude_code.tracing"
    span = ss.spans.add()
    span.name, span.kind = "claude_code.interaction", 1  # SPAN_KIND_INTERNAL
    span.trace_id, span.span_id = trace_id, secrets.token_bytes(8)
    span.end_time_unix_nano = time.time_ns()
    span.start_time_unix_nano = span.end_time_unix_nano - 850_000_000
    attrs = {
        **session_attrs(marker),
        "span.type": "interaction",
        "gen_ai.conversation.id": marker,
        "case": case,
    }
    span.attributes.extend(key_values(attrs))
    return req


def test_malformed_spans_are_reported_and_the_path_to_the_trace_store_keeps_working(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    marker = f"badspan-{secrets.token_hex(4)}"
    url = lab.url("proxy", "otlp_http") + "/v1/traces"
    admin = lab.url("proxy", "admin")

    def post(body: bytes, content_type: str = "application/x-protobuf") -> requests.Response:
        return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=10)

    def dropped() -> int:
        stats = requests.get(admin + "/api/stats", timeout=5).json()
        return int(stats["counters"]["dropped"]["traces"].get("upstream_permanent", 0))

    # Not OTLP at all: refused with 400 naming the problem.
    garbage = post(b"\x0a\xff\xff\xff\xff\x0f not protobuf")
    assert garbage.status_code == 400 and b"not a valid protobuf ExportTraceServiceRequest" in garbage.content
    # OTLP that decodes, with a 3-byte trace id: accepted (observe mode) and reported by the contract.
    was_dropped = dropped()
    answer = post(spans_request(marker, "bad-id", b"\x01\x02\x03").SerializeToString())
    assert answer.status_code == 200 and b"trace_id is 3 bytes" in answer.content, answer.content[:300]
    found = requests.get(admin + "/api/violations", params={"rule": "malformed_id"}, timeout=5).json()
    assert any(v["session_id"] == marker for v in found["violations"]), found

    # Then a valid span: it is stored. The Collector refused the bad id's request as a whole (the proxy
    # dropped it for good, counted, instead of retrying it); Jaeger and the Collector stay healthy.
    assert (
        post(spans_request(marker, "valid", secrets.token_bytes(16)).SerializeToString()).status_code == 200
    )
    wait_for(
        "the valid span in Jaeger",
        lambda: jaeger_spans(lab, {"lab.marker": marker}),
        timeout=30,
        interval=0.5,
    )
    assert [tag(s, "case") for s in jaeger_spans(lab, {"lab.marker": marker})] == ["valid"]
    wait_for("the refused request counted as dropped", lambda: dropped() == was_dropped + 1, timeout=15)
    for service, port in (("collector", "health"), ("jaeger", "health")):
        assert requests.get(lab.url(service, port) + "/", timeout=5).status_code == 200
