"""labctl.install: where binaries are found, when a build is skipped, and what Grafana's absence says."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.install import BINARIES, cache_dir, env_var_for, install, resolve_binary
from labctl.install.collector import build_fingerprint, install_collector
from labctl.install.gobuild import is_up_to_date, stamp_path
from labctl.install.prometheus import install_prometheus
from tests.configs.confhelpers import REPO

GO = shutil.which("go")
# The lab's real cache (where tests/run-all.sh installed the binaries), read before any isolation.
REAL_CACHE = cache_dir()
ORIGINAL_PATH = os.environ.get("PATH", "")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No override variables, an empty cache, and a PATH without the lab's binaries."""
    for name in BINARIES:
        monkeypatch.delenv(env_var_for(name), raising=False)
    monkeypatch.delenv("LABCTL_GRAFANA_HOME", raising=False)
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    (tmp_path / "path").mkdir()
    return tmp_path


def _executable(path: Path, source: Path | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, path)
    else:
        path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_env_var_names() -> None:
    assert env_var_for("otelcol-lab") == "LABCTL_OTELCOL_LAB_BIN"
    assert env_var_for("promtool") == "LABCTL_PROMTOOL_BIN"


def test_missing_binary_names_the_install_command(isolated: Path) -> None:
    with pytest.raises(LabError) as err:
        resolve_binary("otelcol-lab")
    assert "otelcol-lab was not found" in err.value.message
    assert "labctl install collector" in (err.value.hint or "")
    assert "LABCTL_OTELCOL_LAB_BIN" in (err.value.hint or "")
    with pytest.raises(LabError) as err:
        resolve_binary("promtool")
    assert "labctl install prometheus" in (err.value.hint or "")


def test_order_is_override_then_path_then_cache(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = _executable(isolated / "cache" / "bin" / "prometheus")
    assert resolve_binary("prometheus") == cached
    on_path = _executable(isolated / "path" / "prometheus")
    assert resolve_binary("prometheus") == on_path
    override = _executable(isolated / "elsewhere" / "prom")
    monkeypatch.setenv("LABCTL_PROMETHEUS_BIN", str(override))
    assert resolve_binary("prometheus") == override


def test_override_to_a_non_executable_is_an_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = isolated / "not-executable"
    target.write_text("")
    monkeypatch.setenv("LABCTL_PROMETHEUS_BIN", str(target))
    with pytest.raises(LabError) as err:
        resolve_binary("prometheus")
    assert "LABCTL_PROMETHEUS_BIN" in err.value.message and "not an executable" in err.value.message


def test_unknown_binary_and_component(isolated: Path) -> None:
    with pytest.raises(LabError, match="unknown binary"):
        resolve_binary("jaeger")
    with pytest.raises(LabError) as err:
        install("jaeger")
    assert "collector, prometheus, grafana, all" in (err.value.hint or "")


def test_grafana_install_says_how_to_get_it(isolated: Path) -> None:
    with pytest.raises(LabError) as err:
        install("grafana")
    assert "cannot be installed automatically" in err.value.message
    hint = err.value.hint or ""
    assert "grafana/grafana:12.2.0" in hint  # the pinned image, from compose/versions.env
    assert "grafana-12.2.0.linux-amd64.tar.gz" in hint
    assert "LABCTL_GRAFANA_BIN" in hint


def test_grafana_user_binary_is_resolved_with_its_home(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user-provided binary laid out like the official archive (bin/grafana beside conf/defaults.ini).
    home = isolated / "grafana-12.2.0"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "defaults.ini").write_text("[server]\n")
    grafana = _executable(home / "bin" / "grafana")
    monkeypatch.setenv("LABCTL_GRAFANA_BIN", str(grafana))
    (result,) = install("grafana")
    assert result == {
        "component": "grafana",
        "binary": str(grafana),
        "home": str(home),
        "built": False,
        "seconds": 0.0,
    }


def test_grafana_binary_outside_an_archive_is_explained(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_GRAFANA_BIN", str(_executable(isolated / "loose" / "bin" / "grafana")))
    with pytest.raises(LabError) as err:
        install("grafana")
    assert "conf/defaults.ini" in err.value.message and "LABCTL_GRAFANA_HOME" in (err.value.hint or "")


def test_install_all_reports_grafana_without_failing(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Point the cache at the real, already built binaries (tests/run-all.sh built them): nothing rebuilds.
    monkeypatch.setenv("LABCTL_CACHE_DIR", str(REAL_CACHE))
    monkeypatch.setenv("PATH", ORIGINAL_PATH)  # go (and node, which decided how Prometheus was built)
    results = {r["component"]: r for r in install("all")}
    assert results["collector"]["built"] is False
    assert results["prometheus"]["built"] is False
    assert results["grafana"]["binary"] is None and "cannot be installed" in str(results["grafana"]["error"])


def test_cached_builds_are_up_to_date() -> None:
    # run-all.sh installed them with `labctl install`: the stamps match the sources and pinned versions.
    assert install_collector()["built"] is False
    assert install_prometheus()["built"] is False


def test_collector_fingerprint_follows_the_sources(tmp_path: Path) -> None:
    # A copy of the tree with one changed line in main.go must not count as up to date.
    root = tmp_path / "repo"
    shutil.copytree(REPO / "collector-configs" / "distribution", root / "collector-configs" / "distribution")
    shutil.copytree(REPO / "compose", root / "compose")
    shutil.copytree(REPO / "lab", root / "lab", ignore=shutil.ignore_patterns("tests", "*.md"))
    before = build_fingerprint(root)
    assert before == build_fingerprint(REPO)
    main = root / "collector-configs" / "distribution" / "main.go"
    main.write_text(main.read_text() + "\n// changed\n")
    assert build_fingerprint(root) != before
    binary_path = REAL_CACHE / "bin" / "otelcol-lab"
    assert is_up_to_date([binary_path], before)
    assert not is_up_to_date([binary_path], build_fingerprint(root))
    assert stamp_path(binary_path).name == ".otelcol-lab.stamp.json"


def test_without_go_a_cached_build_is_used_and_a_missing_one_explained(isolated: Path) -> None:
    # PATH has no Go here. An empty cache: the error says to install Go (or use docker / an override).
    with pytest.raises(LabError) as err:
        install("collector")
    assert "Go toolchain" in err.value.message
    # A binary already in the cache is used as is: it cannot be checked against the sources without Go.
    cached = _executable(isolated / "cache" / "bin" / "otelcol-lab")
    (result,) = install("collector")
    assert result["built"] is False and result["binary"] == str(cached)
    assert "without Go" in str(result["note"])


def test_a_prometheus_with_its_ui_stays_current_without_node(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Node.js gone later (PATH has only Go): the cached build with its UI is still up to date, never
    # replaced by one without the UI.
    from labctl.install.prometheus import want_ui

    monkeypatch.setenv("LABCTL_CACHE_DIR", str(REAL_CACHE))
    stamp = (REAL_CACHE / "bin" / ".prometheus.stamp.json").read_text()
    if '"web_ui": "True"' not in stamp:
        pytest.skip("the cached Prometheus was built without its UI (no Node.js on this machine)")
    monkeypatch.setenv("PATH", str(Path(GO).parent) if GO else "")
    assert not want_ui()
    assert install_prometheus()["built"] is False
