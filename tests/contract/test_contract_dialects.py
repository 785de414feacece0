"""The seed's contract format and the OpenTelemetry Weaver registry format."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labctl.contract import contract_from_text, default_contract_path, load_contract
from labctl.contract.promname import prometheus_name
from labctl.contract.samples import Point, metrics_request, sample_metrics, session_attrs
from labctl.contract.weaver import dump_weaver

SEED_FILE = default_contract_path().with_name("claude-code-seed.yaml")

# Verbatim from the seed document's config/logging_proxy.yaml example.
SEED_EXAMPLE = """
metrics:
  otel_claude_code_token_usage_tokens_total:
    metric_type: "counter"
    labels: ["model", "token_type", "session_id", "project"]
    validation_rules:
      required_fields: ["value", "labels"]
      required_labels: ["model", "token_type"]
      value_range: [0, 1000000]
    prometheus_format: |
      # HELP otel_claude_code_token_usage_tokens_total Total tokens used
      # TYPE otel_claude_code_token_usage_tokens_total counter
"""


def test_prometheus_names_match_the_reference() -> None:
    assert (
        prometheus_name("claude_code.token.usage", "tokens", True) == "claude_code_token_usage_tokens_total"
    )
    assert prometheus_name("claude_code.cost.usage", "USD", True) == "claude_code_cost_usage_USD_total"
    assert (
        prometheus_name("claude_code.active_time.total", "s", True) == "claude_code_active_time_seconds_total"
    )
    assert prometheus_name("claude_code.session.count", "", True) == "claude_code_session_count_total"
    assert (
        prometheus_name("claude_code.token.usage", "tokens", True, namespace="otel")
        == "otel_claude_code_token_usage_tokens_total"
    )


def test_seed_example_is_read_as_is() -> None:
    c = contract_from_text(SEED_EXAMPLE, "seed.yaml")
    assert c.spec.dialect == "seed"
    rule = c.spec.metrics["otel_claude_code_token_usage_tokens_total"]
    assert rule.prometheus_help == "Total tokens used" and rule.prom_type() == "counter"
    assert rule.min == 0 and rule.max == 1_000_000
    assert {a.name: a.requirement for a in rule.attributes.values()} == {
        "model": "required",
        "token_type": "required",
        "session_id": "recommended",
        "project": "recommended",
    }


def test_seed_example_against_real_claude_code_data_shows_the_label_mismatch() -> None:
    """Claude Code sends `type`, the seed's example expects `token_type`: the contract says so."""
    c = contract_from_text(SEED_EXAMPLE, "seed.yaml")
    req = metrics_request(
        [Point("claude_code.token.usage", 100, {**session_attrs(), "model": "m", "type": "input"})]
    )
    ev = c.evaluate("metrics", req)
    assert [(v["rule"], v["path"].rsplit(".", 1)[-1]) for v in ev.violations()] == [
        ("required_attribute", "attributes[token_type]")
    ]
    ok = metrics_request([Point("claude_code.token.usage", 100, {"model": "m", "token_type": "input"})])
    assert c.evaluate("metrics", ok).violations() == []
    big = metrics_request(
        [Point("claude_code.token.usage", 2_000_000, {"model": "m", "token_type": "input"})]
    )
    assert [v["rule"] for v in c.evaluate("metrics", big).violations()] == ["value_range"]
    empty = metrics_request([Point("claude_code.token.usage", 1, {})])
    assert sorted(v["rule"] for v in c.evaluate("metrics", empty).violations()) == [
        "required_attribute",
        "required_attribute",
        "required_field",
    ]


def test_seed_format_claude_code_contract_accepts_the_sample() -> None:
    c = load_contract(SEED_FILE)
    assert c.spec.dialect == "seed" and len(c.spec.metrics) == 8
    assert c.evaluate("metrics", sample_metrics()).violations() == []


def test_weaver_round_trip_keeps_every_rule(tmp_path: Path) -> None:
    original = load_contract(default_contract_path())
    text = dump_weaver(original.spec)
    data = yaml.safe_load(text)
    types = {g["type"] for g in data["groups"]}
    assert types == {"attribute_group", "metric", "event", "span"}
    token = next(g for g in data["groups"] if g.get("metric_name") == "claude_code.token.usage")
    assert token["instrument"] == "counter" and token["unit"] == "tokens"
    type_attr = next(a for a in token["attributes"] if a["id"] == "type")
    assert type_attr["requirement_level"] == "required"
    assert [m["value"] for m in type_attr["type"]["members"]] == [
        "input",
        "output",
        "cacheRead",
        "cacheCreation",
    ]
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    back = load_contract(path)
    assert back.spec.dialect == "weaver"
    assert back.spec.to_dict() == original.spec.to_dict()
    # and it evaluates the same
    bad = metrics_request(
        [Point("claude_code.token.usage", -1, {**session_attrs(), "model": "m", "type": "x"})]
    )
    assert back.evaluate("metrics", bad).violations() == original.evaluate("metrics", bad).violations()


def test_plain_weaver_registry_with_refs_and_directory(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    reg.mkdir()
    (reg / "attributes.yaml").write_text("""
groups:
  - id: registry.demo
    type: attribute_group
    brief: Demo attributes
    attributes:
      - id: demo.kind
        type:
          members:
            - {id: small, value: small}
            - {id: large, value: large}
        brief: The kind
        stability: development
""")
    (reg / "signals.yaml").write_text("""
groups:
  - id: metric.demo.requests
    type: metric
    metric_name: demo.requests
    brief: Requests
    instrument: counter
    unit: "{request}"
    stability: development
    attributes:
      - ref: demo.kind
        requirement_level: required
      - id: demo.note
        type: string
        brief: a note
        requirement_level:
          conditionally_required: if there is one
  - id: event.demo.happened
    type: event
    name: demo.happened
    brief: Something happened
    stability: development
    attributes:
      - ref: demo.kind
        requirement_level: recommended
""")
    c = load_contract(reg)
    rule = c.spec.metrics["demo.requests"]
    assert rule.unit == "{request}" and rule.attributes["demo.kind"].requirement == "required"
    assert rule.attributes["demo.note"].requirement == "recommended"
    ok = metrics_request([Point("demo.requests", 1, {"demo.kind": "small"}, unit="{request}")])
    assert c.evaluate("metrics", ok).violations() == []
    bad = metrics_request([Point("demo.requests", 1, {"demo.kind": "medium"}, unit="{request}")])
    assert [v["rule"] for v in c.evaluate("metrics", bad).violations()] == ["attribute_value"]
    assert "demo.happened" in c.spec.events


def test_weaver_errors_name_the_file(tmp_path: Path) -> None:
    import pytest

    from labctl.errors import LabError

    f = tmp_path / "r.yaml"
    f.write_text("groups:\n  - id: metric.x\n    type: metric\n    metric_name: x\n    instrument: meter\n")
    with pytest.raises(LabError) as info:
        load_contract(f)
    assert str(f) in info.value.message and "instrument 'meter'" in info.value.message
    f.write_text(
        "groups:\n  - id: metric.x\n    type: metric\n    metric_name: x\n    instrument: counter\n"
        "    attributes:\n      - ref: missing.attr\n"
    )
    with pytest.raises(LabError) as info:
        load_contract(f)
    assert "ref 'missing.attr' is not defined" in info.value.message


@pytest.mark.integration
def test_cli_export_and_import_weaver(labctl_run, tmp_path: Path) -> None:
    out = tmp_path / "cc-weaver.yaml"
    r = labctl_run("contract", "export", "--format", "weaver", "-o", str(out))
    assert r.returncode == 0, r.stderr
    back = tmp_path / "back.yaml"
    r = labctl_run("contract", "import", str(out), "-o", str(back))
    assert r.returncode == 0, r.stderr
    assert load_contract(back).spec.to_dict() == load_contract(default_contract_path()).spec.to_dict()


@pytest.mark.integration
def test_seed_contract_imported_into_labctl_format_keeps_its_meaning(labctl_run, tmp_path: Path) -> None:
    out = tmp_path / "from-seed.yaml"
    r = labctl_run("contract", "import", str(SEED_FILE), "-o", str(out))
    assert r.returncode == 0, r.stderr
    converted = load_contract(out)
    assert converted.spec.dialect == "labctl"
    seed = load_contract(SEED_FILE)
    bad = metrics_request(
        [
            Point("claude_code.token.usage", 5, {"model": "m"}),
            Point("claude_code.token.usage", 2_000_000, {"model": "m", "type": "input"}),
        ]
    )
    for req in (sample_metrics(), bad):
        assert converted.evaluate("metrics", req).violations() == seed.evaluate("metrics", req).violations()
    assert len(seed.evaluate("metrics", bad).violations()) == 2
