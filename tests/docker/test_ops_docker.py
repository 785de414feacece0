"""`labctl reload`, `backup` and `restore` on a real Docker engine: validation runs inside the containers
(`otelcol validate`, `promtool check config`, the proxy's dry run), the Collector gets SIGHUP through
`docker compose kill -s HUP`, Prometheus and the proxy answer on their published ports; the backup copies
the TSDB snapshot and the proxy's data out of the volumes, and restore puts them into fresh volumes after
`down --volumes` — the same answers as before. (Grafana has no stand-in image here: its reload is not run.)"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.state import LabState
from tests.conftest import run_labctl

pytestmark = [pytest.mark.integration, pytest.mark.docker]

MARKER = "docker-ops"


def _tokens(lab: LabState, at: float) -> list[tuple[str, str, str]]:
    r = requests.get(
        lab.url("prometheus", "web") + "/api/v1/query",
        timeout=10,
        params={
            # last_over_time: after the Collector's reload these series are stale (its exporter starts empty)
            "query": f'sum by (session_id, type) (last_over_time(claude_code_token_usage_tokens_total{{lab_marker="{MARKER}"}}[10m]))',
            "time": f"{at:.3f}",
        },
    )
    return sorted(
        (x["metric"]["session_id"], x["metric"]["type"], x["value"][1]) for x in r.json()["data"]["result"]
    )


def test_reload_backup_down_volumes_restore(
    docker_lab: Any, docker_state: tuple[Path, str], tmp_path: Path
) -> None:
    state_dir, instance = docker_state
    lab = docker_lab("module-3")

    def labctl(*args: str) -> str:
        return run_labctl("--instance", instance, *args, state_dir=state_dir, timeout=300).stdout

    labctl(
        "emit",
        "--from-lab",
        "--sessions",
        "2",
        "--duration",
        "6",
        "--marker",
        MARKER,
        "--quiet",
        "--fail-on-error",
    )
    results = json.loads(labctl("reload", "proxy", "collector", "prometheus", "--json"))
    assert [r["service"] for r in results] == ["proxy", "collector", "prometheus"]
    assert all(r["seconds"] <= 3 for r in results), results
    assert results[1]["how"] == "SIGHUP"

    sessions = {s["session_id"]: s["tokens"] for s in json.loads(labctl("proxy", "sessions", "--json"))}
    want = sum(1 for t in sessions.values() for v in t.values() if v)
    deadline = time.monotonic() + 30
    while len(_tokens(lab, time.time())) < want and time.monotonic() < deadline:
        time.sleep(1)
    at = time.time()
    before = _tokens(lab, at)
    assert len(before) == want

    backup = tmp_path / "backup"
    manifest = json.loads(labctl("backup", "--to", str(backup), "--json"))
    assert {"prometheus", "proxy", "lab"} <= set(manifest["parts"]) and manifest["runtime"] == "docker"
    assert manifest["parts"]["prometheus"]["blocks"]

    labctl("down", "--volumes")
    restored = json.loads(labctl("restore", str(backup), "--json"))
    assert restored["runtime"] == "docker" and restored["stage"] == "module-3"
    lab = LabState.load(state_dir)
    assert _tokens(lab, at) == before
    assert {
        s["session_id"]: s["tokens"] for s in json.loads(labctl("proxy", "sessions", "--json"))
    } == sessions
