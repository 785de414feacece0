"""The event store on real processes: a native module-3 lab (proxy, Collector, Prometheus, VictoriaLogs).

The emulator plays Claude Code-like sessions; every event it sent arrives in VictoriaLogs through the
Collector's logs pipeline (OTLP/HTTP), counted per session — no more, no fewer — with its attributes
as fields and the redacted ones still redacted.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.state import LabState
from tests.conftest import REPO, labctl_env, run_labctl, started_lab, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def logsql(lab: LabState, query: str) -> list[dict[str, Any]]:
    resp = requests.post(
        lab.url("victorialogs", "http") + "/select/logsql/query", data={"query": query}, timeout=5
    )
    assert resp.status_code == 200, resp.text
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("events") / "lab"
    with started_lab("module-3", folder):
        yield folder


def test_every_emulated_event_is_stored_once(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    status = json.loads(run_labctl("status", "--json", state_dir=state_dir).stdout)
    rows = {s["service"]: (s["state"], s["health"]) for s in status["services"]}
    assert rows["victorialogs"] == ("running", "healthy"), rows

    marker = f"events-{secrets.token_hex(4)}"
    env = labctl_env(OTEL_RESOURCE_ATTRIBUTES=f"lab.marker={marker}")
    cmd = [sys.executable, "-m", "labctl", "--state-dir", str(state_dir), "emit", "--from-lab"]
    run = subprocess.run(
        [*cmd, "--sessions", "2", "--duration", "6", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    (logs,) = [e for e in summary["exporters"] if e["name"].startswith("logs/")]
    sent = summary["events"]
    assert sent > 0 and logs["items_sent"] == sent and logs["items_failed"] == 0, summary["exporters"]

    def stored() -> dict[str, int]:
        rows = logsql(lab, f'lab.marker:"{marker}" | stats by (session.id) count() n')
        return {r["session.id"]: int(r["n"]) for r in rows}

    # VictoriaLogs makes new rows searchable within about a second: poll until all are there.
    wait_for("every event in VictoriaLogs", lambda: sum(stored().values()) >= sent, timeout=30, interval=0.5)
    per_session = stored()
    assert sum(per_session.values()) == sent, f"stored {per_session}, sent {sent}"
    assert set(per_session) == set(summary["sessions"]), "each session's events, under its session.id"

    # Attributes are fields a student can filter and group on; what the Collector redacts stays so.
    names = {r["event.name"] for r in logsql(lab, f'lab.marker:"{marker}" | stats by (event.name) count() n')}
    assert {"user_prompt", "api_request"} <= names, names
    prompts = logsql(lab, f'lab.marker:"{marker}" event.name:user_prompt | fields prompt')
    assert prompts and all(p.get("prompt") in (None, "", "****") for p in prompts), prompts[:3]


def test_a_cut_event_store_hop_fails_the_check_and_nothing_is_lost_after_heal(state_dir: Path) -> None:
    lab = LabState.load(state_dir)
    run_labctl("break", "network", "--hop", "collector-victorialogs", "--mode", "refuse", state_dir=state_dir)
    try:
        res = run_labctl("check", "--layer", "3", "--json", state_dir=state_dir, check=False)
        report = json.loads(res.stdout)
        (row,) = [r for r in report["results"] if r["name"] == "event stored"]
        assert res.returncode == 13 and row["verdict"] == "FAIL", res.stdout
        assert row["playbook"] == "events-not-stored" and "collector → victorialogs" in row["cause"]
        marker = next(e for e in row["evidence"] if "lab.marker" in e).split('lab.marker:"')[1].split('"')[0]
    finally:
        run_labctl("heal", state_dir=state_dir)
    # The Collector's sending queue held the marker's event during the cut: it arrives after heal.
    wait_for(
        "the held event in VictoriaLogs",
        lambda: logsql(lab, f'lab.marker:"{marker}" | stats count() n'),
        timeout=60,
        interval=1,
    )
    res = run_labctl("check", "--layer", "3", "--json", state_dir=state_dir, check=False)
    assert res.returncode == 0, res.stdout
