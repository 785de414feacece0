"""`labctl reload`, `backup` and `restore` on a real Docker engine (one module-3 lab, run from a copy of the
repository that the tests edit): each service reloads while a client exports, with no client error and
equal totals; a broken edit is refused inside the containers and the old configuration keeps serving;
backup -> `down --volumes` -> restore gives the same answers; damaged backups are refused with nothing
overwritten.

- Reloads: validation runs in the containers (`otelcol validate`, `promtool check config`, the proxy's dry
  run), the Collector gets SIGHUP through `docker compose kill`; the proxy's count equals every token
  Prometheus stored and the dashboard total never drops. prometheus.yml is saved the way editors save
  (renamed over), which a single-file bind mount would never show.
- Alertmanager (the lab moves on to module-4 for the last test): amtool refuses a broken file in its
  container, and a good edit saved by rename is applied by POST /-/reload.
- Grafana has no image in this engine: its reload is not run; the pause-and-copy its database backup uses
  is run on the proxy's spool instead.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labctl.model import load_model
from labctl.ops import backup as ops_backup
from labctl.runtimes.base import get_runtime
from tests.docker.conftest import docker, instance_name, leftovers, remove_project
from tests.ops.opslab import (
    CopyLab,
    Watcher,
    add_recording_rule,
    client_summary,
    copy_repo,
    damaged_copy,
    dashboard_expr,
    module2_pipeline_edit,
    proxy_tokens,
    start_client,
    stored_tokens,
    wait_equal,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

LOAD = "docker-reload-load"
KEPT = "docker-backup"


class DockerCopyLab(CopyLab):
    """A CopyLab on the docker runtime, under its own instance (compose project labctl-<instance>)."""

    def __init__(self, root: Path, state_dir: Path, instance: str) -> None:
        super().__init__(root, state_dir)
        self.instance = instance

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> Any:
        return super().cli("--instance", self.instance, *args, check=check, timeout=timeout)

    @property
    def project(self) -> str:
        return f"labctl-{self.instance}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerCopyLab]:
    root = tmp_path_factory.mktemp("ops-docker")
    lab = DockerCopyLab(copy_repo(root / "repo"), root / "lab", instance_name())
    try:
        lab.cli("--runtime", "docker", "up", "module-3", "--free-ports")
        yield lab
    finally:
        lab.cli("down", "--volumes", check=False)
        remove_project(lab.project)


def reload(lab: CopyLab, *services: str) -> list[dict[str, Any]]:
    return list(json.loads(lab.cli("reload", *services, "--json").stdout))


def edited(lab: CopyLab) -> dict[str, list[str]]:
    """The files `labctl status` says the proxy and the Collector run an older version of."""
    rows = json.loads(lab.cli("status", "--json").stdout)["services"]
    return {r["service"]: r["config_edited"] for r in rows if r["service"] in ("proxy", "collector")}


def marker_count(lab: CopyLab, marker: str, extra: str = "") -> float | None:
    return lab.query_value(f'count(claude_code_token_usage_tokens_total{{lab_marker="{marker}"{extra}}})')


def test_each_service_reloads_under_load_with_no_client_error_and_equal_totals(lab: DockerCopyLab) -> None:
    client = start_client(lab, LOAD, duration=24)
    tokens_total = dashboard_expr("Tokens")
    try:
        with Watcher(lab, tokens_total) as watcher:
            wait_until("the client's first points in Prometheus", lambda: marker_count(lab, LOAD), timeout=30)
            # The proxy: a live setting, applied by POST /api/reload in the running container.
            lab.edit("lab/proxy/proxy.yaml", lambda t: t.replace("retry_after: 5s", "retry_after: 6s"))
            [proxy] = reload(lab, "proxy")
            assert proxy["applied"] == ["limits.retry_after"] and proxy["restart_needed"] == []
            assert proxy["seconds"] <= 3
            # The Collector: module 2's new processor; SIGHUP through the engine, validated in its container.
            lab.edit("collector-configs/base.yaml", module2_pipeline_edit)
            assert edited(lab) == {"proxy": [], "collector": ["collector-configs/base.yaml"]}
            [collector] = reload(lab, "collector")
            assert edited(lab) == {"proxy": [], "collector": []}
            assert collector["how"] == "SIGHUP" and collector["seconds"] <= 3
            wait_until(
                "series with the new processor's label",
                lambda: marker_count(lab, LOAD, ',lab_team="blue"'),
            )
            # Prometheus: its config saved the way editors and `sed -i` save (a new file renamed over the
            # old one), and a new rule.
            lab.save_by_rename(
                "lab/prometheus/prometheus.yml",
                lambda t: t.replace("    lab: labctl\n", "    lab: labctl\n    classroom: ops\n", 1),
            )
            lab.edit("lab/prometheus/rules/claude-code-usage.yml", add_recording_rule)
            [prom] = reload(lab, "prometheus")
            assert prom["seconds"] <= 3
            assert "classroom: ops" in lab.prom("/api/v1/status/config")["yaml"]
            rules = {r["name"] for g in lab.prom("/api/v1/rules")["groups"] for r in g["rules"]}
            assert "lab:reload_test:tokens" in rules

            summary = client_summary(client)
            assert all(e["failed"] == 0 for e in summary["exporters"]), summary["exporters"]
            assert summary["sdk_messages"] == [] and summary["shutdown_flushed"] is True
            proxied = {s: t for s, t in proxy_tokens(lab).items() if s in summary["sessions"]}
            assert len(proxied) == 2 and all(proxied.values())
            wait_equal(
                "Prometheus' stored tokens to equal the proxy's count",
                lambda: stored_tokens(lab, LOAD),
                proxied,
            )
            total = sum(sum(t.values()) for t in proxied.values())
            wait_until(
                "the dashboard total to equal the proxy's count",
                lambda: lab.query_value(tokens_total) == total,
                timeout=20,
            )
        assert not watcher.errors, watcher.errors[:3]
        assert len(watcher.values) > 20
        assert watcher.drops() == [], "the dashboard's Tokens total went down"
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()


def test_a_broken_edit_is_refused_inside_the_containers_and_the_old_config_keeps_serving(
    lab: DockerCopyLab,
) -> None:
    state = lab.state
    health = state.url("collector", "health")
    admin = state.url("proxy", "admin")
    up_since = requests.get(health, timeout=5).json()["upSince"]
    prom_before = lab.prom("/api/v1/status/runtimeinfo")["lastConfigTime"]
    version = requests.get(admin + "/api/stats", timeout=5, headers=state.admin_headers()).json()["config"][
        "version"
    ]

    good = lab.edit(
        "collector-configs/base.yaml",
        lambda t: t.replace(
            "processors: [memory_limiter,", "processors: [transform/missing, memory_limiter,", 1
        ),
    )
    res = lab.cli("reload", "collector", check=False)
    assert res.returncode != 0
    assert "collector: the edited configuration is refused (otelcol validate failed)" in res.stderr
    assert "transform/missing" in res.stderr
    lab.path("collector-configs/base.yaml").write_text(good)

    rules = "lab/prometheus/rules/pipeline-health.yml"
    good = lab.edit(rules, lambda t: t.replace("expr: up == 0", "expr: up ==", 1))
    res = lab.cli("reload", "prometheus", check=False)
    assert res.returncode != 0
    assert "promtool check config failed" in res.stderr and "pipeline-health.yml" in res.stderr
    lab.path(rules).write_text(good)

    good = lab.edit(
        "lab/proxy/proxy.yaml",
        lambda t: t.replace("overflow: ${LAB_PROXY_SPOOL_OVERFLOW:-reject}", "overflow: sideways", 1),
    )
    res = lab.cli("reload", "proxy", check=False)
    assert res.returncode != 0
    assert "spool.overflow: 'sideways' is not one of reject, drop_oldest" in res.stderr
    lab.path("lab/proxy/proxy.yaml").write_text(good)

    # Nothing was applied: the same Collector pipelines, Prometheus config and proxy configuration.
    assert requests.get(health, timeout=5).json()["upSince"] == up_since
    info = lab.prom("/api/v1/status/runtimeinfo")
    assert info["lastConfigTime"] == prom_before and info["reloadConfigSuccess"] is True
    stats = requests.get(admin + "/api/stats", timeout=5, headers=state.admin_headers()).json()
    assert stats["config"]["version"] == version
    # Still serving: the next test's data goes through all three (its totals are compared).


def _answers(lab: CopyLab, at: float) -> dict[str, Any]:
    series = lab.prom(
        "/api/v1/query",
        time=f"{at:.3f}",
        query=f'sum by (session_id, type) (claude_code_token_usage_tokens_total{{lab_marker="{KEPT}"}})',
    )["result"]
    ranged = lab.prom(
        "/api/v1/query_range",
        start=f"{at - 60:.3f}",
        end=f"{at:.3f}",
        step="5",
        query=f'sum(claude_code_cost_usage_USD_total{{lab_marker="{KEPT}"}})',
    )["result"]
    return {
        "series": sorted((r["metric"]["session_id"], r["metric"]["type"], r["value"][1]) for r in series),
        "range": ranged,
        "dashboard": lab.query_value(dashboard_expr("Tokens"), at=at),
        "sessions": proxy_tokens(lab),
    }


def test_backup_down_volumes_restore_gives_the_same_answers(lab: DockerCopyLab, tmp_path: Path) -> None:
    emitted = lab.cli(
        "emit", "--from-lab", "--sessions", "2", "--duration", "4", "--marker", KEPT, "--json", "--quiet"
    )
    sessions = json.loads(emitted.stdout)["sessions"]
    # A session may not have made a model request in 4 s: no token series for it anywhere.
    proxied = {s: t for s, t in proxy_tokens(lab).items() if s in sessions and t}
    assert proxied
    wait_equal(
        "Prometheus to hold every token the proxy counted", lambda: stored_tokens(lab, KEPT), proxied, 60
    )
    at = time.time()
    before = _answers(lab, at)
    assert before["series"] and before["range"] and before["dashboard"]

    backup = tmp_path / "backup"
    manifest = json.loads(lab.cli("backup", "--to", str(backup), "--json").stdout)
    assert set(manifest["parts"]) == {"prometheus", "proxy", "lab"} and manifest["runtime"] == "docker"
    assert manifest["parts"]["prometheus"]["blocks"]
    # The snapshot was copied out and removed from the volume: snapshots do not pile up there.
    code = docker("compose", "-p", lab.project, "exec", "-T", "prometheus", "ls", "/prometheus/snapshots")
    assert code.stdout.strip() == ""

    # How a backup copies Grafana's database (Grafana has no image in this engine): its container paused,
    # the file copied out, the container resumed. Run on the proxy's spool, SQLite too.
    runtime = get_runtime(lab.state, load_model(lab.root))
    spool = runtime.model.service("proxy").docker_data + "/spool.sqlite"
    ops_backup._copy_paused(runtime, "proxy", spool, tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / "spool.sqlite")) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert {r.service: r.state for r in runtime.status()}["proxy"] == "running"  # not left "frozen"

    for how, message in {
        "corrupt": "its SHA-256 differs from the manifest's (corrupt)",
        "truncated": "(truncated)",
    }.items():
        res = lab.cli("restore", str(damaged_copy(backup, tmp_path / f"bad-{how}", how)), check=False)
        assert res.returncode != 0 and message in res.stderr, (how, res.stderr)
        assert "nothing was restored and the lab is unchanged" in res.stderr
    assert _answers(lab, at) == before  # the running lab still answers the same: nothing was overwritten

    lab.cli("down", "--volumes")
    assert leftovers(lab.project) == {"containers": [], "networks": [], "volumes": []}
    res = lab.cli("restore", str(tmp_path / "bad-truncated"), check=False)
    assert res.returncode != 0 and not (lab.dir / "lab.json").exists()
    assert leftovers(lab.project)["volumes"] == []  # the refused restore created nothing

    restored = json.loads(lab.cli("restore", str(backup), "--json").stdout)
    assert restored["runtime"] == "docker" and restored["stage"] == "module-3"
    assert _answers(lab, at) == before


def test_alertmanager_reloads_from_inside_its_container_and_refuses_a_broken_file(lab: DockerCopyLab) -> None:
    # Last in this file: the lab moves on to module-4 (Alertmanager and its receiver join; no Grafana image).
    lab.cli("up", "module-4")
    am = lab.state.url("alertmanager", "web")

    def running() -> str:
        return str(requests.get(am + "/api/v2/status", timeout=5).json()["config"]["original"])

    before = running()
    path = "lab/alertmanager/alertmanager.yml"
    # Saved the way editors save (renamed over): the folder mount shows the new file to amtool at once.
    good = lab.save_by_rename(
        path,
        lambda t: t.replace("receiver: lab-notifications\n  group_by", "receiver: nobody\n  group_by", 1),
    )
    res = lab.cli("reload", "alertmanager", check=False)
    assert res.returncode != 0
    assert "alertmanager: the edited configuration is refused (amtool check-config failed)" in res.stderr
    assert 'undefined receiver "nobody"' in res.stderr
    assert running() == before
    lab.save_by_rename(path, lambda _: good.replace("repeat_interval: 1h", "repeat_interval: 2h", 1))
    [done] = reload(lab, "alertmanager")
    assert done["how"] == "POST /-/reload"
    assert "repeat_interval: 2h" in running() and "repeat_interval: 2h" not in before
