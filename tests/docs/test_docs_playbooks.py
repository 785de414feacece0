"""Every playbook `labctl check` can link to exists and follows the playbook structure."""

from __future__ import annotations

import re

import docsmd

from labctl.checks.playbooks import PLAYBOOKS, playbook_path

PLAYBOOK_DIR = docsmd.REPO / "lab" / "playbooks"
# Each playbook walks the same path: what you see, where it is, what to run, how to fix, how to confirm.
REQUIRED_SECTIONS = ("symptom", "fix", "confirm")


def test_checks_link_to_playbooks():
    assert len(PLAYBOOKS) >= 10


def test_every_linked_playbook_exists():
    missing = [name for name in PLAYBOOKS if not playbook_path(name, docsmd.REPO).is_file()]
    assert not missing, f"labctl check links to playbooks that do not exist: {missing}"


def test_every_playbook_has_the_structure():
    for path in sorted(PLAYBOOK_DIR.glob("*.md")):
        if path.name == "README.md":
            continue
        text = path.read_text(encoding="utf-8")
        headings = [h.lower() for h in re.findall(r"^##\s+(.+)$", text, re.MULTILINE)]
        bold = [b.lower() for b in re.findall(r"\*\*([^*]+)\*\*", text)]
        for section in REQUIRED_SECTIONS:
            assert any(section in h for h in headings + bold), f"{path.name} has no '{section}' section"
        assert "```bash" in text, f"{path.name} shows no command to run"


def test_every_playbook_is_reachable_from_the_index():
    index = (PLAYBOOK_DIR / "README.md").read_text(encoding="utf-8")
    for path in PLAYBOOK_DIR.glob("*.md"):
        if path.name != "README.md":
            assert f"]({path.name})" in index, f"{path.name} is not listed in lab/playbooks/README.md"


def test_playbooks_the_checks_name_in_code_are_known():
    # A check might pass a playbook name as a string literal: each such name must be in PLAYBOOKS.
    known = set(PLAYBOOKS)
    unknown = []
    for path in (docsmd.REPO / "labctl").rglob("*.py"):
        for name in re.findall(r"playbook\s*=\s*[\"']([a-z0-9-]+)[\"']", path.read_text(encoding="utf-8")):
            if name not in known:
                unknown.append(f"{path.relative_to(docsmd.REPO)}: {name}")
    assert not unknown, f"code links playbooks that PLAYBOOKS does not list: {unknown}"


def test_every_alert_rule_has_a_playbook_row():
    # Prometheus' alert names are what a student sees first: each must be explained in the alert playbook.
    import yaml

    page = (PLAYBOOK_DIR / "pipeline-alert-firing.md").read_text(encoding="utf-8")
    names = []
    for path in sorted((docsmd.REPO / "lab" / "prometheus" / "rules").glob("*.y*ml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            names += [r["alert"] for r in group.get("rules") or [] if "alert" in r]
    assert names, "no alert rules found under lab/prometheus/rules"
    missing = [n for n in names if f"`{n}`" not in page]
    assert not missing, f"alerts with no row in pipeline-alert-firing.md: {missing}"
