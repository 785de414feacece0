"""Each build-it exercise fails with its starting file and passes with the model solution (real tools).

The verifiers run the lab's real `otelcol validate` and promtool, so these tests are integration tests.
Besides the two ends, each test checks that a typical wrong answer fails for the right reason, and a
correct answer shaped differently from the model one passes (answers are compared, not query text).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labctl.exercises import EXERCISES, find_exercise
from labctl.exercises.registry import REPO


def run_labctl(*args: str, check: bool = True):
    """The real CLI in this process (each labctl process would spend seconds importing)."""
    from typer.testing import CliRunner

    from labctl.cli import application

    app = application()

    result = CliRunner().invoke(app, list(args))
    assert not check or result.exit_code == 0, result.output
    result.returncode = result.exit_code
    return result


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path, monkeypatch):
    """`exercise check` notes its result in the invocation's lab: never the developer's own one."""
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "lab"))
    return tmp_path / "lab"


ANSWERS = REPO / "lab" / "docs" / "answer-key"
MODEL_SOLUTIONS = {
    "contract-rule": REPO / "lab" / "contracts" / "claude-code.yaml",
    "collector-pipeline": ANSWERS / "collector-pipeline.yaml",
    "promql": ANSWERS / "promql.yaml",
    "scrape-job": ANSWERS / "scrape-job.yaml",
    "recording-rule": ANSWERS / "recording-rule.yaml",
    "dashboard-panel": ANSWERS / "dashboard-panel.json",
    "no-data-alert": ANSWERS / "no-data-alert.yaml",
}
# What must fail in each starting file (the bugs the exercise is about), by the start of the finding.
STARTING_FAILURES = {
    "contract-rule": {"a token.usage point with type 'prompt'", "a token.usage point with type 'Input'"},
    "collector-pipeline": {"the metrics pipeline", "a logs pipeline"},
    "promql": {"token-rate", "tokens-per-type", "cost", "sessions", "cache-share"},
    "scrape-job": {
        "the job pulls from the Collector's prometheus exporter",
        "the job reads the exporter's path",
        "rate(...[1m]) gets at least four samples",
    },
    # The dropped model label and the window only show once the rule records something (next test).
    "recording-rule": {"it records model:claude_code_token_usage_tokens:rate5m", "it records data"},
    "dashboard-panel": {
        "a `model` variable",
        "the query can show 'No data'",
        "the rate window",
        "the query filters",
        "the panel's answer",
    },
    "no-data-alert": {
        "Claude Code cost burn above 20 USD/hour: its query can have no data",
        "Claude Code cost burn above 20 USD/hour: no data notifies",
        "Claude Code cost burn above 20 USD/hour: a failing query notifies",
    },
}


def _failing(name: str, path: Path) -> set[str]:
    findings = find_exercise(name).verify(path)
    assert findings
    return {f.what for f in findings if not f.ok}


def _starts(failed: set[str], expected: set[str]) -> bool:
    return all(any(f.startswith(e) for f in failed) for e in expected) and all(
        any(f.startswith(e) for e in expected) for f in failed
    )


def test_every_exercise_has_a_model_solution_and_expected_failures():
    assert {e.name for e in EXERCISES} == set(MODEL_SOLUTIONS) == set(STARTING_FAILURES)


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(MODEL_SOLUTIONS))
def test_starting_file_fails_and_model_solution_passes(name, tmp_path):
    started = run_labctl("exercise", "start", name, "--dir", str(tmp_path))
    mine = tmp_path / find_exercise(name).filename
    assert mine.is_file(), started.stdout
    before = run_labctl("exercise", "check", name, str(mine), check=False)
    assert before.returncode == 1, before.output
    assert "hint:" in before.stdout
    failed = _failing(name, mine)
    assert _starts(failed, STARTING_FAILURES[name]), failed
    mine.write_text(MODEL_SOLUTIONS[name].read_text(encoding="utf-8"), encoding="utf-8")
    after = run_labctl("exercise", "check", name, str(mine), "--json", check=False)
    report = json.loads(after.stdout)
    assert after.returncode == 0 and report["passed"], report


@pytest.mark.integration
def test_promql_answers_are_compared_not_their_text(tmp_path):
    answers = yaml.safe_load((ANSWERS / "promql.yaml").read_text())
    answers["cost"] = "sum(rate(claude_code_cost_usage_USD_total[60m])) * 3600"  # same answer
    answers["tokens-per-type"] = "sum by (type) (claude_code_token_usage_tokens_total)"  # misses the reset
    answers["sessions"] = "count(count by (session_id) (claude_code_token_usage_tokens_total))"  # idle one
    answers["token-rate"] = "sum(rate(claude_code_token_usage_tokens_total[5m]) by (model)"  # unbalanced
    mine = tmp_path / "my-queries.yaml"
    mine.write_text(yaml.safe_dump(answers), encoding="utf-8")
    failed = _failing("promql", mine)
    assert {f.split(":")[0] for f in failed} == {"tokens-per-type", "sessions", "token-rate"}, failed
    assert any(f.startswith("sessions: your answer {} 4; expected {} 3") for f in failed), failed
    assert any(f.startswith("token-rate: promtool cannot parse it") for f in failed), failed


@pytest.mark.integration
def test_dashboard_panel_with_a_fixed_window_fails_only_that(tmp_path):
    board = json.loads((ANSWERS / "dashboard-panel.json").read_text())
    target = board["panels"][0]["targets"][0]
    target["expr"] = target["expr"].replace("$__rate_interval", "5m")
    mine = tmp_path / "my-dashboard.json"
    mine.write_text(json.dumps(board), encoding="utf-8")
    assert _failing("dashboard-panel", mine) == {"the rate window is $__rate_interval"}


@pytest.mark.integration
def test_collector_config_that_validate_refuses_says_so(tmp_path):
    config = yaml.safe_load((ANSWERS / "collector-pipeline.yaml").read_text())
    config["service"]["pipelines"]["logs"]["exporters"] = ["debug/nowhere"]
    mine = tmp_path / "my-collector.yaml"
    mine.write_text(yaml.safe_dump(config), encoding="utf-8")
    failed = _failing("collector-pipeline", mine)
    assert any(f.startswith("otelcol validate accepts it: ") and "debug/nowhere" in f for f in failed), failed


@pytest.mark.integration
def test_recording_rule_bugs_surface_one_after_another(tmp_path):
    """The starting rule's three bugs, fixed one at a time: each fix shows the next, as a student meets them;
    a rule written differently with the same values passes."""
    start = (REPO / "lab" / "exercises" / "recording-rule.yaml").read_text()
    mine = tmp_path / "my-recording-rule.yaml"
    named = start.replace("record: token_rate", "record: model:claude_code_token_usage_tokens:rate5m")
    steps = [
        (named.replace("[5s]", "[5m]"), {"it records one series per model"}),  # sum() dropped the model
        (named.replace("sum(", "sum by (model) (").replace("[5s]", "[1m]"), {"its values are tokens"}),
        (named.replace("sum(", "sum without (type, session_id) (").replace("[5s]", "[300s]"), set()),
    ]
    for text, expected in steps:
        mine.write_text(text, encoding="utf-8")
        failed = _failing("recording-rule", mine)
        assert _starts(failed, expected) if expected else failed == set(), (text, failed)


@pytest.mark.integration
def test_scrape_job_with_a_scheme_in_the_target_is_refused_by_promtool(tmp_path):
    job = (ANSWERS / "scrape-job.yaml").read_text().replace('"127.0.0.1:8889"', '"http://127.0.0.1:8889"')
    mine = tmp_path / "my-scrape-job.yaml"
    mine.write_text(job, encoding="utf-8")
    failed = _failing("scrape-job", mine)
    assert failed == {f for f in failed if f.startswith("promtool check config accepts it: ")}, failed
    assert any("is not a valid hostname" in f for f in failed), failed


def test_a_check_inside_a_lab_is_noted_for_the_class_view(tmp_path, own_state_dir, monkeypatch):
    """A pass stays a pass after a later fail; outside a lab nothing is written."""
    from labctl.exercises.progress import passed, record
    from labctl.state import LabState

    assert record("promql", True, 0) is False and not own_state_dir.exists()
    LabState(dir=own_state_dir, stage="module-3").save()
    assert record("promql", False, 5) and passed(LabState.load(own_state_dir)) == []
    record("promql", True, 0)
    record("scrape-job", True, 0)
    record("promql", False, 1)
    lab = LabState.load(own_state_dir)
    assert passed(lab) == ["promql", "scrape-job"]
    assert lab.settings["exercises"]["promql"]["last"] == "fail"
    assert lab.settings["exercises"]["promql"]["last_failed_checks"] == 1


def test_start_refuses_to_overwrite_work(tmp_path, monkeypatch):
    from labctl.errors import LabError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-queries.yaml").write_text("token-rate: mine\n")
    result = run_labctl("exercise", "start", "promql", check=False)
    assert isinstance(result.exception, LabError), result.output
    assert "exists" in str(result.exception) and "--force" in str(result.exception)
    assert (tmp_path / "my-queries.yaml").read_text() == "token-rate: mine\n"


def test_unknown_exercise_names_the_known_ones():
    from labctl.errors import LabError

    with pytest.raises(LabError) as err:
        find_exercise("promq")
    assert "promql" in (err.value.hint or "")
