"""Spans against the contract: kind, attributes, the parent each span sits under (also across requests)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from labctl.contract import Contract, contract_from_text, default_contract_path, load_contract

TRACE = b"\x07" * 16
CONV = "0f6c3e1a-5b0b-4b5d-9469-a6d0ee5bb594"


def span(
    name: str, sid: int, parent: int | None = None, kind: int = Span.SPAN_KIND_INTERNAL, **attrs: Any
) -> dict[str, Any]:
    """A span as Claude Code 2.1.332 sends it: span.type, gen_ai.conversation.id and the name's own keys."""
    base: dict[str, Any] = {
        "span.type": name.removeprefix("claude_code."),
        "gen_ai.conversation.id": CONV,
        "session.id": CONV,
        "anthropic.provider": "firstParty",
    }
    if name == "claude_code.llm_request":
        base.update(
            {
                "gen_ai.request.model": "claude-opus-5-5",
                "query_source_safe": "sdk",
                "gen_ai.response.finish_reasons": ["end_turn"],
                "success": True,
                "attempt": 1,
            }
        )
    if name == "claude_code.tool":
        base.update({"gen_ai.tool.name": "Write", "tool_name": "Write"})
    base.update(attrs)
    return {"name": name, "sid": sid, "parent": parent, "kind": kind, "attrs": base}


def request(*spans: dict[str, Any]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add(key="service.name")
    kv.value.string_value = "claude-code"
    ss = rs.scope_spans.add()
    ss.scope.name = "com.anthropic.claude_code.tracing"
    for s in spans:
        sp = ss.spans.add(
            name=s["name"],
            trace_id=TRACE,
            span_id=s["sid"].to_bytes(8, "big"),
            kind=s["kind"],
            start_time_unix_nano=10**18,
            end_time_unix_nano=10**18 + 1_000_000,
        )
        if s["parent"] is not None:
            sp.parent_span_id = s["parent"].to_bytes(8, "big")
        for k, v in s["attrs"].items():
            a = sp.attributes.add(key=k)
            if isinstance(v, bool):
                a.value.bool_value = v
            elif isinstance(v, int):
                a.value.int_value = v
            elif isinstance(v, list):
                for x in v:
                    a.value.array_value.values.add(string_value=x)
            else:
                a.value.string_value = v
    return req


def rules(ev: Any) -> list[str]:
    return sorted(v["rule"] for v in ev.violations())


@pytest.fixture
def cc() -> Contract:
    return load_contract(default_contract_path())


def test_a_whole_trace_in_one_request_conforms(cc: Contract) -> None:
    ev = cc.evaluate(
        "traces",
        request(
            span("claude_code.llm_request", 2, 1),
            span("claude_code.tool.blocked_on_user", 4, 3),
            span("claude_code.tool.execution", 5, 3),
            span("claude_code.tool", 3, 1),
            span("claude_code.interaction", 1),
        ),
    )
    assert (ev.total, ev.rejected, rules(ev)) == (5, 0, [])
    rec = ev.records[0]
    assert rec["span_kind"] == "internal" and rec["parent_span_id"] == (1).to_bytes(8, "big").hex()


def test_kind_required_attributes_enums_and_unknown_spans(cc: Contract) -> None:
    ev = cc.evaluate(
        "traces",
        request(
            span("claude_code.interaction", 1, kind=Span.SPAN_KIND_CLIENT),
            span("claude_code.llm_request", 2, 1, **{"span.type": "chat"}),
            span("claude_code.made_up", 3, 1),
        ),
    )
    assert rules(ev) == ["attribute_value", "span_kind", "unknown_span"]
    assert ev.rejected == 3
    assert len(ev.filtered_request().resource_spans) == 0  # enforce mode drops all three
    messages = " ".join(v["message"] for v in ev.violations())
    assert "should be of kind internal, got client" in messages


def test_subagent_query_source_matches_the_pattern(cc: Contract) -> None:
    ok = span("claude_code.llm_request", 2, 1, query_source_safe="agent.builtin.general-purpose")
    bad = span("claude_code.llm_request", 3, 1, query_source_safe="agentx")
    ev = cc.evaluate("traces", request(ok, bad, span("claude_code.interaction", 1)))
    assert rules(ev) == ["attribute_value"]
    assert "a match of agent\\..+" in ev.violations()[0]["message"]


def test_root_and_parent_rules(cc: Contract) -> None:
    ev = cc.evaluate(
        "traces",
        request(
            span("claude_code.interaction", 1),
            span("claude_code.interaction", 2, 1),  # nested interaction
            span("claude_code.llm_request", 3),  # no parent at all
            span("claude_code.tool.execution", 4, 1),
        ),
    )  # under the interaction, not under a tool
    assert [(v["path"].split("(")[1].split(")")[0], v["rule"]) for v in ev.violations()] == [
        ("claude_code.interaction", "span_parent"),
        ("claude_code.llm_request", "span_parent"),
        ("claude_code.tool.execution", "span_parent"),
    ]
    assert "belongs under: claude_code.tool" in ev.violations()[2]["message"]


def test_a_parent_sent_in_an_earlier_request_is_remembered(cc: Contract) -> None:
    assert rules(cc.evaluate("traces", request(span("claude_code.tool", 3, 1)))) == []  # parent not seen yet
    assert rules(cc.evaluate("traces", request(span("claude_code.interaction", 1)))) == []
    ev = cc.evaluate("traces", request(span("claude_code.tool.execution", 9, 1)))  # its parent is no tool
    assert rules(ev) == ["span_parent"] and ev.rejected == 1


def test_a_wrong_parent_that_arrives_later_is_reported_but_drops_nothing(cc: Contract) -> None:
    assert rules(cc.evaluate("traces", request(span("claude_code.tool.execution", 5, 7)))) == []
    late = cc.evaluate("traces", request(span("claude_code.llm_request", 7, 1)))  # the child's parent
    assert rules(late) == ["span_parent_late"]
    assert late.rejected == 0 and late.filtered_request() is late.request
    assert "sent earlier" in late.violations()[0]["message"]
    assert late.records[0]["verdict"] == "violation"


def test_contract_spans_section_errors_name_the_line() -> None:
    from labctl.errors import LabError

    with pytest.raises(LabError) as info:
        contract_from_text("spans:\n  a:\n    kind: internal\n    parents: [b]\n", "c.yaml")
    assert info.value.message.startswith("c.yaml:") and "parent 'b' is not a span" in info.value.message
    with pytest.raises(LabError) as info:
        contract_from_text("spans:\n  a:\n    kind: sideways\n", "c.yaml")
    assert "kind" in info.value.message and "internal" in info.value.hint
    with pytest.raises(LabError) as info:
        contract_from_text("events:\n  e:\n    attributes:\n      q: {pattern: '(['}\n", "c.yaml")
    assert "not a regular expression" in info.value.message


@pytest.mark.integration
def test_cli_show_lists_spans_with_their_parents(labctl_run) -> None:
    r = labctl_run("contract", "show")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "spans" in lines and "metrics" in lines and "events" in lines
    assert (
        "  claude_code.llm_request  internal span, under claude_code.interaction, claude_code.tool.execution"
        in lines
    )
    assert "  claude_code.interaction  internal span, root" in lines
    r = labctl_run("contract", "validate", str(default_contract_path()))
    assert "10 spans" in r.stdout
