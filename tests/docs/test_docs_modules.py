"""Each module guide has what the curriculum promises: objectives, concepts, exercises, at least two
"break it, then find it" exercises with real faults, the traps, and a self-check for its layer."""

from __future__ import annotations

import re

import docsmd
import pytest

from labctl.faults.registry import FAULTS

MODULES = [docsmd.REPO / "lab" / "modules" / f"module-{n}" / "README.md" for n in (1, 2, 3, 4)]
SECTIONS = ("objectives", "concepts", "exercises", "break it, then find it", "traps real users hit", "done?")


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip().lower(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.parent.name)
def test_module_guide_has_every_part(path):
    sections = _sections(path.read_text(encoding="utf-8"))
    for name in SECTIONS:
        assert name in sections, f"{path.parent.name} has no '## {name}' section"


@pytest.mark.parametrize(
    ("n", "path"), list(enumerate(MODULES, start=1)), ids=[f"module-{n}" for n in (1, 2, 3, 4)]
)
def test_module_breaks_at_least_two_faults_and_checks_its_layer(n, path):
    text = path.read_text(encoding="utf-8")
    breaks = _sections(text)["break it, then find it"]
    faults = {
        ref.argv[1]
        for ref in _refs(path)
        if ref.argv[:1] == ["break"] and len(ref.argv) > 1 and f"labctl {' '.join(ref.argv)}" in breaks
    }
    assert len(faults & set(FAULTS)) >= 2, f"module-{n} breaks only {sorted(faults)}"
    assert f"labctl check --layer {n}" in text, f"module-{n} has no self-check for layer {n}"


def test_the_traps_are_all_taught():
    text = "\n".join(p.read_text(encoding="utf-8") for p in MODULES).lower()
    for trap in ("delta", "metric_expiration", "logs pipeline", "silent", "datasource uid"):
        assert trap in text, f"no module teaches the trap {trap!r}"


def _refs(path):
    return docsmd.command_refs(path)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.parent.name)
def test_every_module_has_a_build_it_exercise_checked_by_labctl(path):
    from labctl.exercises import EXERCISES

    text = path.read_text(encoding="utf-8")
    mine = [e for e in EXERCISES if e.module == path.parent.name]
    assert mine, f"{path.parent.name} has no build-it exercise in labctl/exercises"
    key = (docsmd.REPO / "lab" / "docs" / "answer-key" / "README.md").read_text(encoding="utf-8")
    for exercise in mine:
        assert f"labctl exercise start {exercise.name}" in text
        assert f"labctl exercise check {exercise.name}" in text
        assert f"<!-- output:{path.parent.name}-build" in text
        assert f"`{exercise.name}`" in key, f"the answer key has no row for {exercise.name}"


def _numbered(section: str) -> list[int]:
    return [int(n) for n in re.findall(r"^(\d+)\. ", section, flags=re.MULTILINE)]


@pytest.mark.parametrize("part", ["capstone worksheet", "exit quiz"])
def test_capstone_and_exit_quiz_have_an_answer_for_every_item(part):
    guide = _sections((docsmd.REPO / "lab" / "docs" / "instructor-guide.md").read_text(encoding="utf-8"))
    key = _sections((docsmd.REPO / "lab" / "docs" / "answer-key" / "README.md").read_text(encoding="utf-8"))
    assert part in guide, f"the instructor guide has no '## {part}' section"
    assert part in key, f"the answer key has no '## {part}' section"
    asked, answered = _numbered(guide[part]), _numbered(key[part])
    assert len(asked) >= 7 and asked == list(range(1, len(asked) + 1)), asked
    assert answered == asked, f"{part}: questions {asked}, answers {answered}"
