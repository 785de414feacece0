"""Loading contracts: the Claude Code contract itself, and clear file:line errors for broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.contract import contract_from_text, default_contract_path, load_contract
from labctl.errors import LabError

REFERENCE_METRICS = {
    "claude_code.session.count": ("", None),
    "claude_code.lines_of_code.count": ("", {"added", "removed"}),
    "claude_code.pull_request.count": ("", None),
    "claude_code.commit.count": ("", None),
    "claude_code.cost.usage": ("USD", None),
    "claude_code.token.usage": ("tokens", {"input", "output", "cacheRead", "cacheCreation"}),
    "claude_code.code_edit_tool.decision": ("", None),
    "claude_code.active_time.total": ("s", {"user", "cli"}),
}
REFERENCE_EVENTS = {
    "claude_code.user_prompt",
    "claude_code.tool_result",
    "claude_code.api_request",
    "claude_code.api_error",
    "claude_code.tool_decision",
}
# What Claude Code 2.1.332 sent in the lab's scenarios beyond the documented five (see the contract's header).
OBSERVED_EVENTS = {
    "claude_code.assistant_response",
    "claude_code.plugin_loaded",
    "claude_code.managed_settings_resolved",
    "claude_code.api_retries_exhausted",
    "claude_code.subagent_completed",
    "claude_code.retention_sweep",
}
OBSERVED_SPANS = {
    "claude_code.interaction",
    "claude_code.llm_request",
    "claude_code.tool",
    "claude_code.tool.execution",
    "claude_code.tool.blocked_on_user",
}


def test_claude_code_contract_has_every_metric_and_event_of_the_reference() -> None:
    c = load_contract(default_contract_path())
    assert set(c.spec.metrics) == set(REFERENCE_METRICS)
    assert REFERENCE_EVENTS | OBSERVED_EVENTS <= set(c.spec.events)
    assert OBSERVED_SPANS <= set(c.spec.spans)
    assert c.spec.spans["claude_code.interaction"].root
    assert c.spec.spans["claude_code.llm_request"].parents == (
        "claude_code.interaction",
        "claude_code.tool.execution",
    )
    for name, (unit, types) in REFERENCE_METRICS.items():
        rule = c.spec.metrics[name]
        assert rule.instrument == "counter" and rule.monotonic is True
        assert rule.unit == unit, name
        if types is not None:
            assert set(rule.attributes["type"].values) == types, name
    decision = c.spec.metrics["claude_code.code_edit_tool.decision"].attributes["decision"]
    assert set(decision.values) == {"accept", "reject"}
    source = c.spec.events["claude_code.tool_decision"].attributes["source"]
    assert set(source.values) == {
        "config",
        "hook",
        "user_permanent",
        "user_temporary",
        "user_abort",
        "user_reject",
    }
    assert c.spec.resource["service.name"].requirement == "required"
    # every attribute that carries prompt, response or command text once OTEL_LOG_* switches it on
    assert c.sensitive_attributes == {
        "prompt",
        "prompt_text",
        "response",
        "tool_parameters",
        "tool_input",
        "user_prompt",
        "full_command",
        "system_prompt",
    }


def _error(text: str) -> LabError:
    with pytest.raises(LabError) as info:
        contract_from_text(text, "c.yaml")
    return info.value


def test_yaml_syntax_error_names_file_and_line() -> None:
    err = _error("metrics:\n  a.b:\n    instrument: counter\n   unit: [oops\n")
    assert err.message.startswith("c.yaml:") and "not valid YAML" in err.message
    assert err.hint


def test_unknown_key_names_line_and_suggests_the_right_one() -> None:
    err = _error("metrics:\n  a.b:\n    instrumnt: counter\n")
    assert err.message == "c.yaml:3: metric 'a.b': unknown key 'instrumnt'"
    assert err.hint == "did you mean 'instrument'?"


def test_bad_instrument_lists_the_valid_ones() -> None:
    err = _error("metrics:\n  a.b:\n    instrument: counterr\n")
    assert "c.yaml:3" in err.message and "'instrument' is 'counterr'" in err.message
    assert "counter, updowncounter, gauge, histogram" in (err.hint or "")


def test_bad_requirement_level_and_range() -> None:
    err = _error("metrics:\n  a.b:\n    instrument: counter\n    attributes:\n      x: {requirement: must}\n")
    assert err.message.startswith("c.yaml:5:") and "requirement" in err.message
    err = _error("metrics:\n  a.b:\n    instrument: counter\n    range: [10, 1]\n")
    assert err.message.startswith("c.yaml:4:") and "above maximum" in err.message


def test_missing_file_and_empty_contract() -> None:
    with pytest.raises(LabError) as info:
        load_contract(Path("/nonexistent/contract.yaml"))
    assert "does not exist" in info.value.message
    err = _error("contract: empty\n")
    assert "no metrics, events or spans" in err.message


def test_duplicate_key_is_an_error() -> None:
    err = _error("metrics:\n  a.b:\n    instrument: counter\n  a.b:\n    instrument: gauge\n")
    assert "duplicate key" in err.message and "c.yaml:4" in err.message


def test_gauge_with_temporality_is_refused() -> None:
    err = _error("metrics:\n  a.b:\n    instrument: gauge\n    temporality: delta\n")
    assert "a gauge has no temporality" in err.message


def test_seed_format_errors() -> None:
    err = _error(
        "metrics:\n  x_total:\n    metric_type: counter\n    labels: [a]\n"
        "    validation_rules:\n      required_labels: [b]\n"
    )
    assert "required label 'b' is not in 'labels'" in err.message and err.message.startswith("c.yaml:6")
    err = _error(
        "metrics:\n  x_total:\n    metric_type: counter\n    prometheus_format: |\n"
        "      # HELP y_total wrong name\n"
    )
    assert "HELP line names 'y_total'" in err.message
    err = _error("metrics:\n  x_total:\n    metric_type: countr\n")
    assert "metric_type" in err.message


@pytest.mark.integration
def test_cli_validate_reports_file_and_line(labctl_run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics:\n  a.b:\n    instrument: counter\n    units: s\n")
    r = labctl_run("contract", "validate", str(bad))
    assert r.returncode == 2
    assert f"{bad}:4: metric 'a.b': unknown key 'units'" in r.stderr
    assert "did you mean 'unit'" in r.stderr
    r = labctl_run("contract", "validate", str(default_contract_path()))
    assert r.returncode == 0 and "8 metrics, 29 events, 10 spans" in r.stdout
