"""`labctl backup` → `labctl down --volumes` → `labctl restore` on a real native module-3 lab: the same
query results as before (Prometheus' series at the same evaluation time, the dashboard total, the proxy's
sessions and JSON Lines log). Corrupt, truncated, partial and incompatible backups are refused before
anything is touched: the running lab keeps its data."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ops.opslab import (
    CopyLab,
    client_summary,
    copy_lab,
    dashboard_expr,
    proxy_tokens,
    start_client,
    stored_tokens,
    wait_until,
)

pytestmark = pytest.mark.integration

MARKER = "backup-restore"


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


def _damaged(backup: Path, dest: Path, how: str) -> Path:
    shutil.copytree(backup, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    chunk = next(rel for rel in manifest["files"] if "/chunks/" in rel)
    if how == "corrupt":
        data = bytearray((dest / chunk).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (dest / chunk).write_bytes(bytes(data))
    elif how == "truncated":
        path = dest / chunk
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "partial":
        (dest / "manifest.json").unlink()
    elif how == "incompatible":
        manifest["versions"]["prometheus"] = "2.53.0"
        (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


REFUSALS = {
    "corrupt": "its SHA-256 differs from the manifest's (corrupt)",
    "truncated": "(truncated)",
    "partial": "has no manifest.json: not a complete labctl backup",
    "incompatible": "the backup's TSDB is from Prometheus 2.53.0",
}


def test_backup_down_volumes_restore_gives_the_same_answers(tmp_path: Path) -> None:
    with copy_lab(tmp_path, "module-3") as lab:
        summary = client_summary(start_client(lab, MARKER, duration=6))
        assert all(e["failed"] == 0 for e in summary["exporters"])
        proxied = proxy_tokens(lab)
        wait_until(
            "Prometheus to hold every token the proxy counted",
            lambda: stored_tokens(lab, MARKER) == proxied,
            timeout=20,
        )
        at = time.time()
        before = _answers(lab, at)
        assert before["series"] and before["range"] and before["dashboard"]
        lines = _log_lines(lab)

        backup = tmp_path / "backup"
        manifest = json.loads(lab.cli("backup", "--to", str(backup), "--json").stdout)
        assert set(manifest["parts"]) == {"prometheus", "proxy", "lab"}
        assert manifest["parts"]["prometheus"]["blocks"]
        assert manifest["versions"]["prometheus"] and manifest["format"] == 1
        assert not list((lab.dir / "services" / "prometheus" / "data" / "tsdb" / "snapshots").iterdir())

        # Damaged backups: refused with the reason, the running lab and its data untouched.
        for how, message in REFUSALS.items():
            bad = _damaged(backup, tmp_path / f"bad-{how}", how)
            res = lab.cli("restore", str(bad), check=False)
            assert res.returncode != 0, how
            assert message in res.stderr, (how, res.stderr)
            assert "nothing was restored" in res.stderr or how in ("partial", "incompatible")
        assert _answers(lab, at) == before
        assert json.loads(lab.cli("status", "--json").stdout)["stage"] == "module-3"

        lab.cli("down", "--volumes")
        assert not (lab.dir / "services").exists()
        # Into the fresh lab too: a damaged backup leaves nothing behind.
        res = lab.cli("restore", str(tmp_path / "bad-truncated"), check=False)
        assert res.returncode != 0 and not (lab.dir / "lab.json").exists()

        out = lab.cli("restore", str(backup), "--json")
        restored = json.loads(out.stdout)
        assert restored["stage"] == "module-3" and set(restored["parts"]) == {"prometheus", "proxy"}
        assert _answers(lab, at) == before
        assert _log_lines(lab) == lines
        assert lab.cli("check", "--json", check=False).returncode == 0


def test_restore_into_a_running_lab_replaces_its_data(tmp_path: Path) -> None:
    with copy_lab(tmp_path, "module-3") as lab:
        client_summary(start_client(lab, MARKER, duration=3))
        proxied = proxy_tokens(lab)
        wait_until(
            "Prometheus to hold the first run", lambda: stored_tokens(lab, MARKER) == proxied, timeout=20
        )
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
        assert (
            lab.query_value('count(claude_code_token_usage_tokens_total{lab_marker="after-backup"})') is None
        )
        assert not list(lab.dir.glob("restore-previous-*")), (
            "the replaced data is removed after a good restore"
        )
