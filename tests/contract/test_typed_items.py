"""The evaluator's results are typed and read by name, and a series has an explicit id by content.

Caches downstream (exposition, sessions, the JSONL encoder) key on `Item.series`; these tests hold what
that id must be: the same for the same attributes however the point was read, different for different
attributes, and never tied to the identity of an attributes dict.
"""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from labctl.contract import Contract, Item, ItemMeta, default_contract_path, load_contract
from labctl.contract.samples import Point, logs_request, metrics_request, session_attrs
from labctl.otlp.values import attrs_key
from labctl.proxy.inspect.exposition import ProxiedMetrics
from labctl.proxy.inspect.sessions import SessionTracker

A = {**session_attrs("s1"), "model": "m", "type": "input"}


def _tokens(value: int, attrs: dict | None = None, temporality: str = "delta") -> Point:
    return Point(
        "claude_code.token.usage", value, dict(attrs or A), temporality=temporality, start_ns=1, time_ns=2
    )


def test_items_and_meta_are_named() -> None:
    c = load_contract(default_contract_path())
    ev = c.evaluate("metrics", metrics_request([_tokens(5)]))
    item = ev.items[0]
    assert isinstance(item, Item) and isinstance(item.meta, ItemMeta)
    assert (item.meta.name, item.meta.kind, item.meta.temporality) == (
        "claude_code.token.usage",
        "sum",
        "delta",
    )
    assert (item.value, item.attributes, item.violations, item.position) == (5, A, [], 0)
    logs = c.evaluate(
        "logs", logs_request([("claude_code.user_prompt", {**session_attrs(), "prompt_length": "3"})])
    )
    assert logs.items[0].meta.kind == "log" and logs.items[0].series is None


def test_series_id_is_by_content_on_both_paths() -> None:
    c = load_contract(default_contract_path())
    req = metrics_request([_tokens(5), _tokens(6, {**A, "type": "output"})])
    raw = req.SerializeToString()
    walked = c.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw).items
    again = Contract(c.spec).evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw).items
    plain = c.evaluate("metrics", req).items
    # Two contracts, two attributes dicts: one id for one series; another series, another id.
    assert walked[0].attributes is not again[0].attributes
    assert walked[0].series == again[0].series and walked[0].series != walked[1].series
    # Without the wire bytes every metric point still has an id (its attributes' content).
    assert all(it.series is not None for it in plain)
    first = c.evaluate("metrics", metrics_request([_tokens(1)])).items[0]
    assert first.series is not None
    assert attrs_key(first.attributes) == attrs_key(A)


def test_one_series_one_exposition_line_whatever_its_id() -> None:
    # The same series read from the wire (bytes id) and from the message (its content): one cell.
    c = load_contract(default_contract_path())
    pm = ProxiedMetrics()
    req = metrics_request([_tokens(5)])
    raw = req.SerializeToString()
    pm.observe(c.evaluate("metrics", ExportMetricsServiceRequest.FromString(raw), raw))
    other = metrics_request([_tokens(7)])
    # An exemplar sits between value and attributes: the id is then the attributes' content, not bytes.
    other.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].exemplars.add(as_int=1)
    ev = c.evaluate("metrics", other, other.SerializeToString())
    assert not isinstance(ev.items[0].series, bytes)
    pm.observe(ev)
    out: list[str] = []
    pm.render(out)
    lines = [ln for ln in out if ln.startswith("claude_code_token_usage_tokens_total{")]
    assert len(lines) == 1 and lines[0].endswith(" 12"), lines


def test_sessions_follow_the_series_not_the_dict() -> None:
    # The contract's series cache is dropped between requests (a new Contract): new dicts, same series.
    c = load_contract(default_contract_path())
    tracker = SessionTracker()
    for total in (100, 150, 150):
        req = metrics_request([_tokens(total, temporality="cumulative")])
        raw = req.SerializeToString()
        tracker.observe(Contract(c.spec).evaluate("metrics", req, raw), now=1000.0)
    assert tracker.get("s1").to_dict()["tokens"] == {"input": 150}  # type: ignore[union-attr]


def test_violating_indices_name_every_violating_point_read_either_way() -> None:
    """The inspector's list of violating points (what the page and the violations API show) skips its walk
    when nothing was rejected: it must still find every violating point, from the wire and from objects,
    and points given violations afterwards (the log writer's with_violations)."""
    c = load_contract(default_contract_path())
    bad = {**A, "type": "not-a-type"}
    req = metrics_request([_tokens(5), _tokens(6, bad), _tokens(7), _tokens(8, bad)])
    for raw in (None, req.SerializeToString()):
        ev = c.evaluate("metrics", req, raw)
        assert ev.violating_indices() == [1, 3] and ev.rejected == 2
    clean = c.evaluate("metrics", metrics_request([_tokens(5), _tokens(6)]))
    assert clean.violating_indices() == []
    clean.with_violations({1: [{"path": "p", "rule": "r", "message": "m"}]})
    assert clean.violating_indices() == [1]
