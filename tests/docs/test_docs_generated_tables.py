"""The tables in the docs are exactly what tests/docs/generate_tables.py makes from the real files."""

from __future__ import annotations

import docsmd
import generate_tables


def test_generated_sections_say_nothing_false():
    """Every line of a generated section is a line the generator makes from today's files.

    A row that changed or disappeared at its source (a renamed metric, a removed option, a different
    alert expression) fails; rows added at the source since the last run of the generator are allowed
    until `python tests/docs/generate_tables.py` brings them in, so other work landing never breaks the
    docs, only makes them incomplete.
    """
    docs = generate_tables.documents_with_sections()
    names = set()
    for path in docs:
        names.update(m.group("name") for m in generate_tables.MARKER_RE.finditer(path.read_text()))
    # Every section the generator knows is used somewhere: a table is not silently dropped from the docs.
    assert names == set(generate_tables.SECTIONS), set(generate_tables.SECTIONS) ^ names
    cache: dict[str, str] = {}
    false = []
    for path in docs:
        for m in generate_tables.MARKER_RE.finditer(path.read_text(encoding="utf-8")):
            name = m.group("name")
            if name not in cache:
                cache[name] = generate_tables.SECTIONS[name]()
            today = {_key(name, line) for line in cache[name].splitlines()}
            for line in m.group("body").splitlines():
                key = _key(name, line)
                if key and key not in today:
                    false.append(f"{path.relative_to(docsmd.REPO)} [{name}]: {line[:160]}")
    assert not false, (
        "generated docs say what the files no longer say; run "
        "`python tests/docs/generate_tables.py`:\n" + "\n".join(false)
    )


# Sections whose rows carry descriptions other helpers polish all the time (test docstrings, option help,
# matrix expectations): a row is false when the thing it names is gone, not when its wording changed.
# Contract, alert, dashboard and API tables are compared whole: they are specifications.
KEY_CELLS = {"test-files": 2, "cli-reference": 1, "matrix-cases": 1, "faults": 1}


def _key(section: str, line: str) -> str | None:
    if not line.strip():
        return None
    cells = KEY_CELLS.get(section)
    if cells is None:
        return line
    if line.startswith("|"):
        return "|".join(line.split("|")[1 : cells + 1])
    if line.startswith("#"):
        return line
    return None  # prose inside a described section (help paragraphs)


def test_key_of_a_described_row_ignores_its_wording():
    a = "| `configs` | `test_install.py` | old words |"
    b = "| `configs` | `test_install.py` | new words |"
    assert _key("test-files", a) == _key("test-files", b)
    assert _key("alert-rules", a) != _key("alert-rules", b)
    assert _key("test-files", a) != _key("test-files", a.replace("install", "removed"))


def test_render_rewrites_a_section_from_its_source():
    text = "before\n<!-- generated:images -->\nstale\n<!-- /generated:images -->\nafter\n"
    new = generate_tables.render(text)
    assert "stale" not in new and "`LAB_COLLECTOR_IMAGE`" in new and new.endswith("after\n")


def test_generated_sections_hold_real_content():
    # No section may be the placeholder the generator writes when its source file is missing.
    for path in generate_tables.documents_with_sections():
        text = path.read_text(encoding="utf-8")
        for m in generate_tables.MARKER_RE.finditer(text):
            assert "_Not generated:" not in m.group("body"), (
                f"{path.name}: section {m.group('name')} has no source"
            )
            assert m.group("body").count("\n|") >= 2, (
                f"{path.name}: section {m.group('name')} has no table rows"
            )


def test_contract_tables_name_every_metric_and_event():
    from labctl.contract.loader import read_contract_file

    spec = read_contract_file(docsmd.REPO / "lab" / "contracts" / "claude-code.yaml")
    page = (docsmd.REPO / "lab" / "docs" / "contracts.md").read_text(encoding="utf-8")
    for name in list(spec.metrics) + list(spec.events):
        assert f"`{name}`" in page


def test_instructor_guide_port_offsets_never_collide():
    # The instructor guide promises: offsets in multiples of 100 keep 50 students' ports apart.
    from labctl.model import load_model

    defaults = [p.host for svc in load_model(docsmd.REPO).services.values() for p in svc.ports.values()]
    taken: dict[int, int] = {}
    for student in range(50):
        for port in defaults:
            shifted = port + 100 * student
            assert shifted <= 65535
            assert shifted not in taken, f"student {student} and {taken[shifted]} both get port {shifted}"
            taken[shifted] = student
    guide = (docsmd.REPO / "lab" / "docs" / "instructor-guide.md").read_text(encoding="utf-8")
    assert "multiples of 100" in guide and "50 students" in guide


def test_port_descriptions_are_whole():
    # The ports table shows lab.yaml's `what` texts; an unquoted comma in a YAML flow mapping would cut
    # one short and turn the rest into stray keys.
    import yaml

    raw = yaml.safe_load((docsmd.REPO / "lab" / "lab.yaml").read_text(encoding="utf-8"))
    for name, svc in raw["services"].items():
        for port, spec in svc["ports"].items():
            assert set(spec) <= {"host", "container", "what"}, f"{name}.{port} has stray keys: {spec}"
