"""Every Mermaid diagram in the docs parses with the real Mermaid library (run under Node with jsdom).

The parser lives in a small npm project beside this file; tests/run-all.sh installs it with
`npm ci --prefix tests/docs/mermaid`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import docsmd
import pytest

MERMAID_DIR = Path(__file__).resolve().parent / "mermaid"


def _parse(blocks: list[dict]) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: install it (apt-get install nodejs npm) to check the diagrams")
    if not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        pytest.fail("the Mermaid parser is not installed: run `npm ci --prefix tests/docs/mermaid`")
    proc = subprocess.run(
        [node, str(MERMAID_DIR / "parse.mjs")],
        check=False,
        input=json.dumps(blocks),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=MERMAID_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.integration
def test_every_mermaid_block_parses():
    blocks = docsmd.mermaid_blocks(docsmd.doc_files())
    assert len(blocks) >= 4, "the architecture docs should hold at least four diagrams"
    payload = [{"id": f"{b.path.relative_to(docsmd.REPO)}:{b.line}", "text": b.text} for b in blocks]
    results = _parse(payload)
    failures = [f"{r['id']}: {r['error']}" for r in results if not r["ok"]]
    assert not failures, "Mermaid blocks that do not parse:\n" + "\n\n".join(failures)


def test_architecture_has_the_four_diagrams():
    text = (docsmd.REPO / "lab" / "docs" / "architecture.md").read_text(encoding="utf-8")
    for heading in (
        "Component architecture",
        "Data flow of a metric",
        "Testing architecture",
        "Configuration hierarchy",
    ):
        assert heading.lower() in text.lower(), f"architecture.md lacks the section {heading!r}"


@pytest.mark.integration
def test_parser_rejects_a_broken_diagram():
    # The check is only worth something if the parser says no to a broken diagram.
    results = _parse(
        [
            {"id": "good", "text": "flowchart LR\n  A[proxy] --> B[collector]"},
            {"id": "bad", "text": "flowchart LR\n  A[proxy --> B"},
        ]
    )
    assert [r["ok"] for r in results] == [True, False]
