"""Every `labctl …` command and option shown in the docs exists in the real CLI (so docs cannot drift)."""

from __future__ import annotations

import clitree
import docsmd
import pytest


@pytest.fixture(scope="module")
def root():
    return clitree.root_command()


def _all_refs() -> list[docsmd.CommandRef]:
    refs: list[docsmd.CommandRef] = []
    for path in docsmd.doc_files():
        refs.extend(docsmd.command_refs(path))
    return refs


def test_docs_show_the_main_commands():
    # Guards against the extractor silently finding nothing (which would make the next test pass vacuously).
    refs = _all_refs()
    commands = {r.argv[0] for r in refs if r.argv}
    assert len(refs) >= 40, f"only {len(refs)} labctl commands found in the docs"
    for expected in ("up", "down", "status", "check", "break", "heal", "emit", "env", "doctor"):
        assert expected in commands, f"no doc shows `labctl {expected}`"


def test_every_documented_command_and_option_exists(root):
    failures = []
    for ref in _all_refs():
        for problem in clitree.problems(ref.argv, root):
            rel = ref.path.relative_to(docsmd.REPO)
            failures.append(f"{rel}:{ref.line}: {ref.text}\n    {problem}")
    assert not failures, "docs show commands the CLI does not have:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["up", "module-1", "--no-such-option"],
        ["status", "--json", "extra-argument", "another"],
        ["break", "no-such-fault"],
        ["break", "network", "--hop", "nowhere"],
        ["break", "network", "--no-such-option", "1"],
        ["check", "--layer", "two"],
        ["emit", "--duration", "soon"],
    ],
)
def test_checker_rejects_what_the_cli_rejects(root, argv):
    # The checker itself must be able to fail: invented commands and options are reported.
    assert clitree.problems(argv, root)


def test_checker_accepts_real_commands(root):
    assert clitree.problems(["--help"], root) == []
    assert clitree.problems(["status", "--json"], root) == []
    assert clitree.problems(["break", "network", "--hop", "collector-prometheus"], root) == []
    assert clitree.problems(["--instance", "alice", "up", "module-1", "--port-offset", "100"], root) == []


def _hints_in_code() -> list[tuple[str, int, str]]:
    """`labctl …` commands the tool itself tells a student to run (hints, messages, docstrings)."""
    import re
    import shlex

    found = []
    for path in sorted((docsmd.REPO / "labctl").rglob("*.py")):
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in re.finditer(r"`labctl ([^`{}]*)`", line):
                try:
                    argv = shlex.split(m.group(1))
                except ValueError:
                    argv = m.group(1).split()
                found.append((str(path.relative_to(docsmd.REPO)), line_no, argv))
    return found


def test_every_command_the_tool_suggests_exists(root):
    # Error hints and "next:" lines are docs too: a hint naming a command that does not exist strands a student.
    hints = _hints_in_code()
    assert len(hints) >= 20
    failures = [
        f"{path}:{line}: labctl {' '.join(argv)}\n    {p}"
        for path, line, argv in hints
        for p in clitree.problems(argv, root)
    ]
    assert not failures, "the tool suggests commands it does not have:\n" + "\n".join(failures)
