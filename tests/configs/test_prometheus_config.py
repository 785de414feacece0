"""prometheus.yml and the alert rules, checked by the real promtool; the rule unit tests run here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from labctl.checks.playbooks import PLAYBOOKS
from tests.configs.confhelpers import PROMETHEUS_DIR, binary, install_prometheus_dir, write_targets

RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("promtool")), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def _alert_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def _seconds(duration: str) -> int:
    m = re.fullmatch(r"(\d+)([smh])", duration)
    assert m, duration
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


@pytest.mark.integration
def test_config_is_valid_with_targets_laid_out_like_the_runtime(tmp_path: Path) -> None:
    config = install_prometheus_dir(tmp_path)
    write_targets(
        tmp_path / "targets",
        {
            "collector.json": "127.0.0.1:8889",
            "collector-internal.json": "127.0.0.1:8888",
            "proxy.json": "127.0.0.1:4320",
            "prometheus.json": "127.0.0.1:9090",
            "alertmanager.json": "127.0.0.1:9093",
        },
    )
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    # With every targets file present there is nothing to warn about.
    assert "WARNING" not in result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_config_shape() -> None:
    doc = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert doc["global"]["scrape_interval"] == "5s"
    assert doc["global"]["evaluation_interval"] == "5s"
    assert doc["rule_files"] == ["rules/*.yml"]
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    assert set(jobs) == {"collector", "otelcol", "proxy", "prometheus"}
    from labctl.runtimes.targets import SCRAPE_TARGETS  # the files the runtimes write

    for job in jobs.values():
        (sd,) = job["file_sd_configs"]
        for file in sd["files"]:
            assert file.startswith("targets/") and file.removeprefix("targets/") in SCRAPE_TARGETS, file
    # Only the proxy's own counters are kept from the proxy (it re-exposes Claude Code's metrics too).
    (keep,) = jobs["proxy"]["metric_relabel_configs"]
    assert keep["action"] == "keep" and keep["regex"] == "labctl_proxy_.*"


@pytest.mark.integration
def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
@pytest.mark.integration
def test_rule_unit_tests(test_file: Path) -> None:
    result = promtool("test", "rules", test_file.name, cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_file_has_unit_tests() -> None:
    tested = set()
    for test_file in RULE_TESTS:
        for rel in yaml.safe_load(test_file.read_text())["rule_files"]:
            tested.add((test_file.parent / rel).resolve())
    assert tested == {p.resolve() for p in RULE_FILES}
    # ...and every alert appears in some alert_rule_test with a non-empty expectation.
    fired = set()
    for test_file in RULE_TESTS:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for art in case.get("alert_rule_test", []):
                if art.get("exp_alerts"):
                    fired.add(art["alertname"])
    assert fired == {r["alert"] for r in _alert_rules()}


def test_alerts_explain_themselves_and_fire_soon() -> None:
    names = [r["alert"] for r in _alert_rules()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in _alert_rules():
        ann = rule["annotations"]
        assert {"summary", "description", "playbook"} <= set(ann), rule["alert"]
        playbook = ann["playbook"]
        assert playbook.startswith("lab/playbooks/") and playbook.endswith(".md")
        assert Path(playbook).stem in PLAYBOOKS, f"{rule['alert']}: unknown playbook {playbook}"
        # Lab-friendly: a student sees the alert within half a minute of breaking something.
        assert _seconds(rule["for"]) <= 30, rule["alert"]
        # `info`: only labctl check's own test notification (lab/prometheus/rules/lab-check.yml).
        assert (
            rule["labels"]["severity"] in {"warning", "critical"} or rule["alert"] == "LabCheckNotification"
        )
        assert "layer" in rule["labels"]
