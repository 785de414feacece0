"""Module 3's exercise "Snapshot, destroy, restore", run as its guide shows it on a real native module-3 lab:
`labctl backup` → `labctl down --volumes` → `labctl restore` gives the same answers as before — the
guide's two questions, and more: Prometheus' series and a range at the same evaluation time, the dashboard
total, the proxy's sessions and JSON Lines log. Corrupt, truncated, partial and incompatible backups are
refused before anything is touched: the running lab keeps its data. Then a restore into the running lab
puts it back to the backup's state. One lab for the file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.opslab import (
    CopyLab,
    as_student,
    client_summary,
    copy_lab,
    damaged_copy,
    dashboard_expr,
    guide_blocks,
    proxy_tokens,
    start_client,
    stored_tokens,
    wait_equal,
    wait_until,
)

pytestmark = pytest.mark.integration

MARKER = "before-backup"  # the guide's


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CopyLab]:
    with copy_lab(tmp_path_factory.mktemp("backup-restore"), "module-3") as lab:
        yield lab


def _asked(outputs: dict[str, str]) -> dict[str, Any]:
    """The guide's two questions, without what changes between two asks (the query's evaluation time)."""
    out: dict[str, Any] = {}
    for line, text in outputs.items():
        if line.startswith("curl"):
            result = json.loads(text)["data"]["result"]
            out["query"] = sorted((r["metric"]["session_id"], r["value"][1]) for r in result)
        else:
            out["sessions"] = text
    return out


def _answers(lab: CopyLab, at: float) -> dict[str, Any]:
    """What a student would compare: query results at one evaluation time, and the proxy's view."""
    by_series = lab.prom(
        "/api/v1/query",
        time=f"{at:.3f}",
        query=f'sum by (session_id, type) (claude_code_token_usage_tokens_total{{lab_marker="{MARKER}"}})',
    )
    ranged = lab.prom(
        "/api/v1/query_range",
        start=f"{at - 60:.3f}",
        end=f"{at:.3f}",
        step="5",
        query=f'sum(claude_code_cost_usage_USD_total{{lab_marker="{MARKER}"}})',
    )
    return {
        "series": sorted(
            (r["metric"]["session_id"], r["metric"]["type"], r["value"][1]) for r in by_series["result"]
        ),
        "range": ranged["result"],
        "dashboard": lab.query_value(dashboard_expr("Tokens"), at=at),
        "sessions": proxy_tokens(lab),
    }


def _log_lines(lab: CopyLab) -> int:
    path = lab.dir / "services" / "proxy" / "data" / "inspect" / "records.jsonl"
    return len(path.read_bytes().splitlines())


DEFAULT_BACKUPS = "~/.local/state/labctl/backups/default-*"  # the guide's default instance's backups
REFUSALS = {
    "corrupt": "its SHA-256 differs from the manifest's (corrupt)",
    "truncated": "(truncated)",
    "partial": "has no manifest.json: not a complete labctl backup",
    "incompatible": "the backup's TSDB is from Prometheus 2.53.0",
}


def test_module_3_exercise_backup_down_volumes_restore_gives_the_same_answers(lab: CopyLab) -> None:
    send_and_back_up, destroy_and_restore = guide_blocks("module-3", "4. Snapshot, destroy, restore")
    assert destroy_and_restore == [
        "labctl down --volumes",
        f'labctl restore "$(ls -d {DEFAULT_BACKUPS} | tail -1)"',
    ]
    questions = [line for line in send_and_back_up if line.startswith(("labctl proxy sessions", "curl"))]
    assert len(questions) == 2 and send_and_back_up[-1] == "labctl backup"
    asked: dict[str, str] = {}
    for line in send_and_back_up:
        # The one change to the guide: 6 s of data instead of 20 (the suite's time budget).
        out = as_student(lab, line.replace("--duration 20", "--duration 6"))
        if line in questions:
            asked[line] = out
    before_asked = _asked(asked)
    assert len(before_asked["query"]) == 2
    assert all(session in before_asked["sessions"] for session, _ in before_asked["query"])
    proxied = {s: t for s, t in proxy_tokens(lab).items() if s in dict(before_asked["query"])}
    assert len(proxied) == 2
    # The guide's pause was enough: every token the proxy counted was stored before the backup.
    wait_equal(
        "Prometheus to hold every token the proxy counted", lambda: stored_tokens(lab, MARKER), proxied
    )
    at = time.time()
    before = _answers(lab, at)
    assert before["series"] and before["range"] and before["dashboard"]
    lines = _log_lines(lab)

    [backup] = (lab.dir.parent / "backups").iterdir()  # where `labctl backup` puts it by default
    manifest = json.loads((backup / "manifest.json").read_text())
    assert set(manifest["parts"]) == {"prometheus", "proxy", "lab"}
    assert manifest["parts"]["prometheus"]["blocks"]
    assert manifest["versions"]["prometheus"] and manifest["format"] == 1
    assert not list((lab.dir / "services" / "prometheus" / "data" / "tsdb" / "snapshots").iterdir())

    # Damaged backups: refused with the reason, the running lab and its data untouched.
    scratch = lab.dir.parent / "damaged"
    for how, message in REFUSALS.items():
        bad = damaged_copy(backup, scratch / how, how)
        res = lab.cli("restore", str(bad), check=False)
        assert res.returncode != 0, how
        assert message in res.stderr, (how, res.stderr)
        assert "nothing was restored" in res.stderr or how in ("partial", "incompatible")
    assert _answers(lab, at) == before
    assert json.loads(lab.cli("status", "--json").stdout)["stage"] == "module-3"

    as_student(lab, destroy_and_restore[0])
    assert not (lab.dir / "services").exists()
    # Into the fresh lab too: a damaged backup leaves nothing behind.
    res = lab.cli("restore", str(scratch / "truncated"), check=False)
    assert res.returncode != 0 and not (lab.dir / "lab.json").exists()

    # The guide's own line, its default backups folder pointed at this lab's (`backup` puts it beside the
    # state dir, named after the instance).
    as_student(lab, destroy_and_restore[1].replace(DEFAULT_BACKUPS, f"{backup.parent}/*"))
    assert _asked({line: as_student(lab, line) for line in questions}) == before_asked
    assert _answers(lab, at) == before
    assert _log_lines(lab) == lines
    assert lab.cli("check", "--json", check=False).returncode == 0


def test_restore_into_a_running_lab_replaces_its_data(lab: CopyLab, tmp_path: Path) -> None:
    client_summary(start_client(lab, "kept", duration=3))
    proxied = proxy_tokens(lab)
    wait_until("Prometheus to hold the first run", lambda: stored_tokens(lab, "kept"), timeout=20)
    backup = tmp_path / "backup"
    lab.cli("backup", "--to", str(backup))
    at = time.time()
    before = _answers(lab, at)
    # More data after the backup: the restore brings the lab back to the backup's state.
    client_summary(start_client(lab, "after-backup", duration=3, seed=99))
    assert len(proxy_tokens(lab)) > len(proxied)
    lab.cli("restore", str(backup))
    assert proxy_tokens(lab) == proxied
    assert _answers(lab, at) == before
    assert lab.query_value('count(claude_code_token_usage_tokens_total{lab_marker="after-backup"})') is None
    assert not list(lab.dir.glob("restore-previous-*")), "the replaced data is removed after a good restore"
