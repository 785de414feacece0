"""The session model: realistic, bounded, and steered by --rate, --models and --error-rate."""

from __future__ import annotations

import collections

import pytest

from labctl.emulator.catalog import MODEL_ALIASES, MODELS, cost_usd
from labctl.emulator.runner import EmitOptions, parse_models
from labctl.emulator.session import plan_run
from labctl.errors import LabError


def actions(
    seed: int = 1,
    sessions: int = 20,
    duration: float = 600,
    rate: float = 6,
    models: str | None = None,
    errors: float = 0.03,
) -> list:
    return [
        a for p in plan_run(seed, sessions, duration, rate, parse_models(models), errors) for a in p.actions
    ]


def test_actions_stay_inside_the_run_and_in_time_order() -> None:
    plans = plan_run(3, 5, 60, 6, parse_models(None), 0.05)
    for p in plans:
        times = [a.at for a in p.actions]
        assert times == sorted(times) and all(0 <= t < 60 for t in times)
        assert p.actions[0].kind == "session_start"


def test_rate_sets_the_prompt_frequency() -> None:
    prompts = sum(1 for a in actions(rate=6) if a.kind == "user_prompt")
    expected = 20 * 600 / 60 * 6  # sessions × minutes × prompts per minute
    assert 0.8 * expected < prompts < 1.2 * expected
    assert sum(1 for a in actions(rate=0) if a.kind == "user_prompt") <= 20  # at most the first prompt each


def test_model_mix_is_respected() -> None:
    reqs = [
        a
        for a in actions(models="opus=1")
        if a.kind == "api_request" and a.data["query_source"] != "auxiliary"
    ]
    assert {a.data["model"] for a in reqs} == {MODEL_ALIASES["opus"]}
    mix = collections.Counter(
        a.data["model"]
        for a in actions(models="sonnet=3,haiku=1")
        if a.kind == "api_request" and a.data["query_source"] == "main"
    )
    assert 2 < mix[MODEL_ALIASES["sonnet"]] / mix[MODEL_ALIASES["haiku"]] < 4.5


def test_error_rate_gives_a_few_api_errors_with_attempts() -> None:
    acts = actions(errors=0.1)
    errors = [a for a in acts if a.kind == "api_error"]
    requests = [a for a in acts if a.kind == "api_request"]
    assert 0.05 < len(errors) / len(requests) < 0.2
    assert {a.data["attempt"] for a in errors} >= {1, 2}
    assert not [a for a in actions(errors=0.0) if a.kind == "api_error"]


def test_tokens_and_cost_are_consistent_and_plausible() -> None:
    for a in actions(sessions=5):
        if a.kind != "api_request":
            continue
        d = a.data
        assert d["cost_usd"] == pytest.approx(
            cost_usd(
                d["model"],
                d["input_tokens"],
                d["output_tokens"],
                d["cache_read_tokens"],
                d["cache_creation_tokens"],
            )
        )
        assert 0 < d["cost_usd"] < 2 and d["model"] in MODELS and d["duration_ms"] > 0


def test_sessions_collide_only_by_person_not_by_session_id() -> None:
    plans = plan_run(9, 60, 10, 6, parse_models(None), 0)
    assert len({p.identity.session_id for p in plans}) == 60
    assert len({p.identity.user_id for p in plans}) == 40  # a class of 40: some people run two sessions


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("gpt=1", "unknown model"),
        ("sonnet=x", "not a number"),
        ("sonnet=-1", "negative"),
        ("sonnet=0", "weight 0"),
    ],
)
def test_bad_models_option(text: str, fragment: str) -> None:
    with pytest.raises(LabError, match=fragment):
        parse_models(text)


@pytest.mark.parametrize(
    ("field", "value"), [("sessions", 0), ("duration_s", 0), ("rate_per_min", -1), ("error_rate", 1.5)]
)
def test_bad_emit_options(field: str, value: float) -> None:
    with pytest.raises(LabError):
        EmitOptions(**{field: value}).validate()
