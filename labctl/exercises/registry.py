"""The table of build-it exercises (one entry each) and the shapes their verifiers return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabError

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a verifier checked: `ok` and what it saw; on failure a hint toward the idea."""

    ok: bool
    what: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Exercise:
    name: str
    module: str
    task: str  # one sentence: what to build
    filename: str  # the file the student edits (written by `labctl exercise start`)
    starting_text: Callable[[], str]
    verify: Callable[[Path], list[Finding]]


def _read(*parts: str) -> Callable[[], str]:
    return lambda: (REPO.joinpath(*parts)).read_text(encoding="utf-8")


def _contract_start() -> str:
    from labctl.exercises.contract_rule import starting_contract

    return starting_contract()


def _verify_contract(path: Path) -> list[Finding]:
    from labctl.exercises.contract_rule import verify

    return verify(path)


def _verify_collector(path: Path) -> list[Finding]:
    from labctl.exercises.collector_pipeline import verify

    return verify(path)


def _verify_promql(path: Path) -> list[Finding]:
    from labctl.exercises.promql_tasks import verify

    return verify(path)


def _verify_scrape(path: Path) -> list[Finding]:
    from labctl.exercises.scrape_job import verify

    return verify(path)


def _verify_recording(path: Path) -> list[Finding]:
    from labctl.exercises.recording_rule import verify

    return verify(path)


def _verify_alert(path: Path) -> list[Finding]:
    from labctl.exercises.no_data_alert import verify

    return verify(path)


def _verify_panel(path: Path) -> list[Finding]:
    from labctl.exercises.dashboard_panel import verify

    return verify(path)


EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "contract-rule",
        "module-1",
        "make the contract refuse a token.usage point whose type is not a known token type",
        "my-contract.yaml",
        _contract_start,
        _verify_contract,
    ),
    Exercise(
        "collector-pipeline",
        "module-2",
        "fix a Collector config with two bugs that `otelcol validate` does not see",
        "my-collector.yaml",
        _read("lab", "exercises", "collector-pipeline.yaml"),
        _verify_collector,
    ),
    Exercise(
        "promql",
        "module-3",
        "answer five questions about an hour of usage with one PromQL query each",
        "my-queries.yaml",
        _read("lab", "exercises", "promql.yaml"),
        _verify_promql,
    ),
    Exercise(
        "scrape-job",
        "module-3",
        "make a scrape job pull Claude Code's metrics from the Collector, often enough for rate()",
        "my-scrape-job.yaml",
        _read("lab", "exercises", "scrape-job.yaml"),
        _verify_scrape,
    ),
    Exercise(
        "recording-rule",
        "module-3",
        "record tokens per second per model for the dashboards, under a conventional name",
        "my-recording-rule.yaml",
        _read("lab", "exercises", "recording-rule.yaml"),
        _verify_recording,
    ),
    Exercise(
        "dashboard-panel",
        "module-4",
        "turn a panel that hides outages into one that follows the dashboards' rules",
        "my-dashboard.json",
        _read("lab", "exercises", "dashboard-panel.json"),
        _verify_panel,
    ),
    Exercise(
        "no-data-alert",
        "module-4",
        "make a Grafana alert notify when its data is missing",
        "my-alert.yaml",
        _read("lab", "exercises", "no-data-alert.yaml"),
        _verify_alert,
    ),
)


def find_exercise(name: str) -> Exercise:
    for exercise in EXERCISES:
        if exercise.name == name:
            return exercise
    names = ", ".join(e.name for e in EXERCISES)
    raise LabError(f"no exercise named {name!r}", f"one of: {names} (labctl exercise list)")
