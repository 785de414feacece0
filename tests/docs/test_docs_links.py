"""Every relative link and image in the docs points at a file (and heading) that exists."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import docsmd


def _broken(paths: list[Path]) -> list[str]:
    broken = []
    for path in paths:
        for link in docsmd.links(path):
            target = link.target
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            where = (
                f"{path.relative_to(docsmd.REPO) if path.is_relative_to(docsmd.REPO) else path}:{link.line}"
            )
            file_part, _, anchor = target.partition("#")
            dest = path if not file_part else (path.parent / unquote(file_part)).resolve()
            if not dest.exists():
                broken.append(f"{where}: {target} → no such file")
                continue
            if anchor and dest.suffix == ".md" and anchor not in docsmd.anchors(dest):
                broken.append(f"{where}: {target} → no heading #{anchor} in {dest.name}")
    return broken


def test_docs_have_links():
    total = sum(len(docsmd.links(p)) for p in docsmd.doc_files())
    assert total >= 30, f"only {total} links found: the extractor or the docs went missing"


def test_every_relative_link_resolves():
    broken = _broken(docsmd.doc_files())
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_link_checker_reports_a_broken_link(tmp_path):
    doc = tmp_path / "doc.md"
    (tmp_path / "there.md").write_text("# Real heading\n")
    doc.write_text(
        "# Top\n[ok](there.md#real-heading) [gone](missing.md) [bad anchor](there.md#nope) [self](#top)\n"
        "`[not a link](inside-code.md)`\n```\n[also not](in-a-block.md)\n```\n"
    )
    broken = _broken([doc])
    assert len(broken) == 2, broken
    assert "missing.md" in broken[0] and "#nope" in broken[1]
