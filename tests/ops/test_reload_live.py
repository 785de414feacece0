"""`labctl reload` on a real native module-3 lab, the way a student edits the pipeline while Claude Code
keeps exporting: each service reloads under a client exporting every second, with no client error, no
lost point (the proxy's count = every token Prometheus stored) and a dashboard total that never drops.
A broken edit is refused with the tool's own message and the old configuration keeps serving (on a
module-4 lab, so Alertmanager's file is among them)."""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import pytest
import requests

from tests.ops.opslab import (
    MODULE2_LIVE_EDIT,
    Watcher,
    add_recording_rule,
    as_student,
    client_summary,
    copy_lab,
    dashboard_expr,
    guide_blocks,
    module2_pipeline_edit,
    proxy_tokens,
    start_client,
    stored_tokens,
    wait_until,
)

pytestmark = pytest.mark.integration


def reload(lab, *services: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(lab.cli("reload", *services, "--json").stdout)


def test_every_service_reloads_under_load_without_a_client_error_or_a_lost_point(tmp_path: Path) -> None:
    marker = "reload-under-load"
    with copy_lab(tmp_path, "module-3") as lab:
        client = start_client(lab, marker, duration=30)
        tokens_total = dashboard_expr("Tokens")
        try:
            with Watcher(lab, tokens_total) as watcher:
                time.sleep(6)
                # 1. proxy.yaml: a live setting (Retry-After advice) and a restart-only one (the spool limit).
                lab.edit("lab/proxy/proxy.yaml", lambda t: t.replace("retry_after: 5s", "retry_after: 6s"))
                [proxy] = reload(lab, "proxy")
                assert proxy["applied"] == ["limits.retry_after"] and proxy["restart_needed"] == []
                assert proxy["seconds"] <= 3
                time.sleep(4)
                # 2. The Collector gains a processor (module 2's exercise, as its guide shows it): SIGHUP,
                # pipelines rebuilt in the same process.
                lab.edit("collector-configs/base.yaml", module2_pipeline_edit)
                [collector] = reload(lab, "collector")
                assert collector["how"] == "SIGHUP" and collector["seconds"] <= 3
                wait_until(
                    "series with the new processor's label",
                    lambda: lab.query_value(
                        f'count(claude_code_token_usage_tokens_total{{lab_marker="{marker}",lab_team="blue"}})'
                    ),
                )
                # What module 2's guide then says to look at: the label on the series, and the proxy's
                # counters (everything acknowledged was forwarded or is on its way; nothing dropped).
                # Two commands, each over more than one line (80 columns): each starts with `curl`.
                block = "\n".join(guide_blocks("module-2", MODULE2_LIVE_EDIT)[-1])
                label_line, counters_line = re.split(r"\n(?=curl )", block)
                assert 'lab_team="blue"' in as_student(lab, label_line)
                counters = ast.literal_eval(as_student(lab, counters_line))
                assert counters["accepted"] > 0 and counters["forwarded"] > 0 and counters["dropped"] == {}
                # 3. Prometheus: a new recording rule, read from the repository's own rule file.
                lab.edit("lab/prometheus/rules/claude-code-usage.yml", add_recording_rule)
                [prom] = reload(lab, "prometheus")
                assert prom["seconds"] <= 3
                rules = {r["name"] for g in lab.prom("/api/v1/rules")["groups"] for r in g["rules"]}
                assert "lab:reload_test:tokens" in rules
                summary = client_summary(client)
                # Zero client errors: every batch of every exporter acknowledged, the SDK logged nothing.
                assert all(e["failed"] == 0 for e in summary["exporters"]), summary["exporters"]
                assert summary["sdk_messages"] == []
                assert summary["shutdown_flushed"] is True
                proxied = proxy_tokens(lab)
                assert proxied and all(proxied.values())
                # No lost point: Prometheus stored exactly what the proxy counted (across the reset).
                wait_until(
                    "Prometheus' stored tokens to equal the proxy's count",
                    lambda: stored_tokens(lab, marker) == proxied,
                    timeout=20,
                )
                total = sum(sum(t.values()) for t in proxied.values())
                wait_until(
                    "the dashboard total to equal the proxy's count",
                    lambda: lab.query_value(tokens_total) == total,
                    timeout=20,
                )
                time.sleep(1)
            assert not watcher.errors, watcher.errors[:3]
            assert len(watcher.values) > 40
            assert watcher.drops() == [], "the dashboard's Tokens total went down"
            # The raw counter did reset (the Collector's totals started again): the query is what counted it.
            resets = lab.query_value(
                f'sum(resets(claude_code_token_usage_tokens_total{{lab_marker="{marker}"}}[30m]))'
            )
            vanished = lab.query_value(
                f'count(last_over_time(claude_code_token_usage_tokens_total{{lab_marker="{marker}",lab_team=""}}[30m]))'
            )
            assert (resets or 0) + (vanished or 0) > 0
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()


def test_a_broken_edit_is_refused_and_the_old_configuration_keeps_serving(tmp_path: Path) -> None:
    # Module 4: Alertmanager is one of the services (natively without Grafana, whose binary cannot be had).
    with copy_lab(tmp_path, "module-4") as lab:
        state = lab.state
        health = state.url("collector", "health")
        up_since = requests.get(health, timeout=5).json()["upSince"]
        prom_before = lab.prom("/api/v1/status/runtimeinfo")["lastConfigTime"]

        # Collector: a pipeline naming a processor that is not configured.
        good = lab.edit(
            "collector-configs/base.yaml",
            lambda t: t.replace(
                "processors: [memory_limiter, delta_to_cumulative, batch]",
                "processors: [memory_limiter, transform/missing, batch]",
                1,
            ),
        )
        res = lab.cli("reload", "collector", check=False)
        assert res.returncode != 0
        assert "collector: the edited configuration is refused (otelcol validate failed)" in res.stderr
        assert "transform/missing" in res.stderr
        assert requests.get(health, timeout=5).json()["upSince"] == up_since  # never signalled
        lab.path("collector-configs/base.yaml").write_text(good)

        # Prometheus: a rule that does not parse; promtool's own message is shown.
        rules = "lab/prometheus/rules/pipeline-health.yml"
        good = lab.edit(rules, lambda t: t.replace("expr: up == 0", "expr: up ==", 1))
        res = lab.cli("reload", "prometheus", check=False)
        assert res.returncode != 0
        assert "promtool check config failed" in res.stderr and "pipeline-health.yml" in res.stderr
        info = lab.prom("/api/v1/status/runtimeinfo")
        assert info["lastConfigTime"] == prom_before and info["reloadConfigSuccess"] is True
        assert any(g["name"] for g in lab.prom("/api/v1/rules")["groups"])  # the old rules still evaluate
        lab.path(rules).write_text(good)

        # Proxy: an invalid value; the dry run names the key.
        good = lab.edit(
            "lab/proxy/proxy.yaml",
            lambda t: t.replace("overflow: ${LAB_PROXY_SPOOL_OVERFLOW:-reject}", "overflow: sideways", 1),
        )
        res = lab.cli("reload", "proxy", check=False)
        assert res.returncode != 0
        assert "spool.overflow: 'sideways' is not one of reject, drop_oldest" in res.stderr
        stats = requests.get(state.url("proxy", "admin") + "/api/stats", timeout=5).json()
        assert stats["config"]["version"] == 1
        lab.path("lab/proxy/proxy.yaml").write_text(good)

        # Alertmanager: a route to a receiver that does not exist; amtool names it, nothing is reloaded.
        am = state.url("alertmanager", "web")

        def am_config() -> str:
            return str(requests.get(am + "/api/v2/status", timeout=5).json()["config"]["original"])

        running = am_config()
        alertmanager_yml = "lab/alertmanager/alertmanager.yml"
        good = lab.save_by_rename(
            alertmanager_yml,
            lambda t: t.replace("receiver: lab-notifications\n  group_by", "receiver: nobody\n  group_by", 1),
        )
        res = lab.cli("reload", "alertmanager", check=False)
        assert res.returncode != 0
        assert "alertmanager: the edited configuration is refused (amtool check-config failed)" in res.stderr
        assert 'undefined receiver "nobody"' in res.stderr
        assert am_config() == running
        # Past labctl, Alertmanager itself refuses the file too and keeps serving the old one.
        refused = requests.post(am + "/-/reload", timeout=10)
        assert refused.status_code == 500 and "nobody" in refused.text
        assert am_config() == running
        # A good edit, saved the way editors save (a new file renamed over the old), is applied at once.
        lab.save_by_rename(
            alertmanager_yml, lambda _: good.replace("repeat_interval: 1h", "repeat_interval: 2h", 1)
        )
        [reloaded] = json.loads(lab.cli("reload", "alertmanager", "--json").stdout)
        assert reloaded["how"] == "POST /-/reload" and reloaded["seconds"] <= 3
        assert "repeat_interval: 2h" in am_config()
        assert requests.get(am + "/-/ready", timeout=5).status_code == 200

        # Grafana (no binary natively here): refused with what runs and how to start it.
        res = lab.cli("reload", "grafana", check=False)
        assert res.returncode != 0 and "grafana is not running in this lab (module-4)" in res.stderr
        assert "labctl up <module>" in res.stderr

        # Two services at once: one broken file and nothing is applied, not even the good one.
        lab.edit("lab/proxy/proxy.yaml", lambda t: t.replace("retry_after: 5s", "retry_after: 9s"))
        lab.edit("collector-configs/base.yaml", lambda t: t.replace("limit_mib: 400", "limit_mib: lots"))
        res = lab.cli("reload", "proxy", "collector", check=False)
        assert res.returncode != 0 and "collector: the edited configuration is refused" in res.stderr
        assert (
            requests.get(state.url("proxy", "admin") + "/api/stats", timeout=5).json()["config"]["version"]
            == 1
        )
        assert requests.get(health, timeout=5).json()["upSince"] == up_since


def test_status_and_up_name_the_files_edited_since_a_service_loaded_them(tmp_path: Path) -> None:
    with copy_lab(tmp_path, "module-2") as lab:

        def edited() -> dict[str, list[str]]:
            doc = json.loads(lab.cli("status", "--json").stdout)
            return {
                s["service"]: s["config_edited"]
                for s in doc["services"]
                if s["service"] in ("proxy", "collector")
            }

        assert edited() == {"proxy": [], "collector": []}
        assert "nothing to reload" in lab.cli("reload").stderr + lab.cli("reload").stdout
        lab.edit("collector-configs/base.yaml", lambda t: t.replace("timeout: 1s", "timeout: 2s", 1))
        assert edited() == {"proxy": [], "collector": ["collector-configs/base.yaml"]}
        pid = next(
            s["pid"]
            for s in json.loads(lab.cli("status", "--json").stdout)["services"]
            if s["service"] == "collector"
        )
        # `up` again: nothing restarts, and it says how to apply the edit.
        out = lab.cli("up", "module-2")
        assert "collector runs an older version of collector-configs/base.yaml" in out.stdout + out.stderr
        assert "labctl reload collector" in out.stdout + out.stderr
        status = json.loads(lab.cli("status", "--json").stdout)
        assert next(s["pid"] for s in status["services"] if s["service"] == "collector") == pid
        # `reload` without names reloads exactly the edited service.
        done = reload(lab)
        assert [r["service"] for r in done] == ["collector"]
        assert edited() == {"proxy": [], "collector": []}
