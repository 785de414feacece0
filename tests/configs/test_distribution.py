"""The lab's Collector distribution: pinned like compose/versions.env, and it registers what the configs use."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from labctl.model import load_model
from tests.configs.confhelpers import COLLECTOR_CONFIGS, REPO, binary

DIST = COLLECTOR_CONFIGS / "distribution"


def _requires() -> dict[str, str]:
    text = (DIST / "go.mod").read_text()
    block = re.search(r"^require \((.*?)^\)", text, re.DOTALL | re.MULTILINE)
    assert block, "go.mod has no require block"
    out = {}
    for line in block.group(1).splitlines():
        parts = line.split("//")[0].split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def test_collector_modules_are_pinned_to_versions_env() -> None:
    versions = load_model(REPO).versions
    core, contrib = versions["LAB_COLLECTOR_CORE_VERSION"], versions["LAB_COLLECTOR_CONTRIB_VERSION"]
    requires = _requires()
    collector = {m: v for m, v in requires.items() if m.startswith("go.opentelemetry.io/collector")}
    contrib_mods = {m: v for m, v in requires.items() if "opentelemetry-collector-contrib" in m}
    assert collector and contrib_mods
    # Core modules are v0.<minor> (unstable) or v1.x (stable) of the same release train.
    unstable = {m: v for m, v in collector.items() if v.startswith("v0.")}
    stable_versions = {v for v in collector.values() if v.startswith("v1.")}
    assert set(unstable.values()) == {core}, unstable
    assert len(stable_versions) == 1, f"stable collector modules at several releases: {stable_versions}"
    assert set(contrib_mods.values()) == {contrib}, contrib_mods


def _used_component_types() -> set[tuple[str, str]]:
    """(kind, type) for every component named in any collector config, overlays and faults included."""
    used: set[tuple[str, str]] = set()
    for path in sorted(COLLECTOR_CONFIGS.rglob("*.yaml")):
        if "distribution" in path.parts:
            continue
        doc = yaml.safe_load(path.read_text()) or {}
        for kind in ("receivers", "processors", "exporters", "extensions", "connectors"):
            for name in doc.get(kind) or {}:
                used.add((kind, name.split("/")[0]))
    return used


def _registered() -> dict[str, set[str]]:
    out = subprocess.run(
        [str(binary("otelcol-lab")), "components"], capture_output=True, text=True, check=True
    )
    doc = yaml.safe_load(out.stdout)
    return {
        kind: {c["name"] for c in (doc.get(kind) or [])}
        for kind in ("receivers", "processors", "exporters", "extensions", "connectors")
    }


@pytest.mark.integration
def test_every_component_a_config_uses_is_registered() -> None:
    registered = _registered()
    # The distribution also answers to the deprecated aliases (otlp -> otlp_grpc, otlphttp -> otlp_http,
    # deltatocumulative -> delta_to_cumulative, prometheusremotewrite -> prometheus_remote_write).
    aliases = {
        "otlphttp": "otlp_http",
        "deltatocumulative": "delta_to_cumulative",
        "prometheusremotewrite": "prometheus_remote_write",
    }
    missing = []
    for kind, name in sorted(_used_component_types()):
        canonical = aliases.get(name, name)
        if kind == "exporters" and name == "otlp":
            canonical = "otlp_grpc"
        if canonical not in registered.get(kind, set()):
            missing.append(f"{kind}/{name}")
    assert not missing, f"configs use components the lab's distribution lacks: {missing}"


@pytest.mark.integration
def test_distribution_registers_the_planned_components() -> None:
    assert _registered() == {
        "receivers": {"otlp"},
        "processors": {"memory_limiter", "batch", "resource", "delta_to_cumulative", "redaction"},
        "exporters": {"debug", "otlp_grpc", "otlp_http", "prometheus", "prometheus_remote_write"},
        "extensions": {"bearertokenauth", "health_check", "file_storage"},
        "connectors": {"count", "span_metrics"},  # span_metrics: the per-request-label trap
    }


@pytest.mark.integration
def test_binary_reports_the_pinned_release() -> None:
    out = subprocess.run(
        [str(binary("otelcol-lab")), "--version"], capture_output=True, text=True, check=True
    )
    core = load_model(REPO).versions["LAB_COLLECTOR_CORE_VERSION"]
    assert f"version {core}-lab" in out.stdout


def test_main_go_is_the_only_source() -> None:
    # go.sum is committed so builds are reproducible and verified against the checksum database.
    assert (DIST / "go.sum").is_file()
    assert sorted(p.name for p in DIST.glob("*.go")) == ["main.go"]
