"""The exercises' expected outputs are what the real tool prints (tests/docs/generate_outputs.py)."""

from __future__ import annotations

import re

import generate_outputs


def _sections_in_docs() -> dict[str, str]:
    return generate_outputs.sections_in_docs()


def test_every_output_section_comes_from_the_scenario():
    in_docs = set(_sections_in_docs())
    in_scenario = {s.section for s in generate_outputs.SCENARIO if s.section}
    assert in_docs == in_scenario, (
        f"docs only: {in_docs - in_scenario}; scenario only: {in_scenario - in_docs}"
    )


def test_each_section_is_written_by_one_part_that_starts_its_own_lab():
    # The parts' live tests (test_docs_outputs_modules_*.py) each compare only their own sections.
    owner: dict[str, str] = {}
    for part, steps in generate_outputs.PARTS.items():
        for step in steps:
            if step.section:
                assert owner.setdefault(step.section, part) == part, f"{step.section} is in two parts"
        first_up = next(s for s in steps if s.args[:1] == ("up",))
        assert "--port-offset" in first_up.run_extra, f"{part}'s first `up` picks no ports of its own"


def test_output_sections_are_filled_with_transcripts():
    for name, body in _sections_in_docs().items():
        # The note may wrap onto further `#   ` lines.
        transcript = re.sub(
            r"\A```console\n# representative output: [^\n]+\n(#   [^\n]+\n)*", "```console\n", body
        )
        assert transcript.startswith("```console\n$ "), f"output section {name} holds no generated transcript"


def test_tidy_writes_default_ports_and_state_dir(tmp_path):
    runner = generate_outputs.Runner(tmp_path / "state", offset=520)
    text = runner.tidy(
        f"proxy http://127.0.0.1:{4317 + 520}/ data {tmp_path / 'state'}/lab.json took 12345 ms"
    )
    assert (
        text == f"proxy http://127.0.0.1:4317/ data {generate_outputs.DEFAULT_STATE}/lab.json took 12345 ms"
    )


def test_key_facts_keep_verdicts_states_and_outcomes():
    shown = """$ labctl check --layer 2
┃    ┃ check              ┃ evidence                    ┃ cause ┃ playbook ┃
│ ok │ collector health   │ http://127.0.0.1:13133/: {"status":"Server │       │          │
│    │                    │ available"}                 │       │          │
│ FAIL │ proxy → collector  │ proxy forwarded +0 metric points │ connections hang │ lab/playbooks/upstream-unre… │
error: layer 2 fails first: connections to 127.0.0.1:47803 hang
what to do: read lab/playbooks/upstream-unreachable.md"""
    reworded = shown.replace("proxy forwarded +0 metric points", "nothing forwarded yet (0 points)").replace(
        "47803 hang", "51234 hang and time out"
    )
    assert generate_outputs.key_facts(shown) == generate_outputs.key_facts(reworded)
    for changed in (
        shown.replace("│ FAIL │", "│ ok │"),
        shown.replace("layer 2 fails", "layer 3 fails"),
        shown.replace("upstream-unreachable.md", "proxy-down.md"),
        shown.replace("collector health", "collector ready"),
    ):
        assert generate_outputs.key_facts(shown) != generate_outputs.key_facts(changed)


def test_a_representative_transcript_is_compared_by_its_shape():
    shown = (
        "# representative output: a 3 s run\n$ labctl emit --duration 20\n│ logs/otlp(grpc) │ 2 │ 0 │ 20 │\n"
    )
    longer = shown.replace("│ 2 │ 0 │ 20 │", "│ 5 │ 0 │ 61 │")
    assert generate_outputs.key_facts(shown) == generate_outputs.key_facts(longer)
    refused = shown.replace("│ 2 │ 0 │ 20 │", "│ 2 │ failed │ 20 │")
    assert generate_outputs.key_facts(shown) != generate_outputs.key_facts(refused)
    # Without the note, counts are facts as before.
    exact = shown.removeprefix("# representative output: a 3 s run\n")
    assert generate_outputs.key_facts(exact) != generate_outputs.key_facts(longer.split("\n", 1)[1])
