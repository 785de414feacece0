"""The Collector's local slot (labctl/runtimes/collector_slot.py): any list of overlays folds into its
two files so that base + local-1 + local-2 merges to what base + each overlay in turn would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.runtimes import collector_slot


def merge_like_the_collector(base: dict[str, Any], *docs: dict[str, Any]) -> dict[str, Any]:
    """Config files merged in order: maps key by key, anything else (null too) replaces."""
    out = yaml.safe_load(yaml.safe_dump(base))
    for doc in docs:
        collector_slot._merge(out, doc)
    return out


def test_two_files_carry_a_key_taken_away_and_written_again() -> None:
    base = {"service": {"pipelines": {"logs": {"receivers": ["otlp"]}, "metrics": {"receivers": ["otlp"]}}}}
    overlays = [
        {"service": {"pipelines": None}},  # no-logs-pipeline: clear, then write back all but logs
        {"service": {"pipelines": {"metrics": {"receivers": ["otlp"]}}}},
        {"processors": {"batch": {"timeout": "1s"}}, "service": {"telemetry": None}},
    ]
    nulls, merged = collector_slot.fold(overlays)
    assert merge_like_the_collector(base, nulls, merged) == merge_like_the_collector(base, *overlays)
    assert "logs" not in merge_like_the_collector(base, nulls, merged)["service"]["pipelines"]


def test_the_slot_is_empty_maps_without_overlays_and_inlines_the_env_an_overlay_reads(tmp_path: Path) -> None:
    assert collector_slot.write(tmp_path, []) is True
    assert [p.read_text() for p in collector_slot.slot_paths(tmp_path)] == ["{}\n", "{}\n"]
    assert collector_slot.write(tmp_path, []) is False  # unchanged: nothing rewritten
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("# explains the trap\nextensions:\n  auth/x:\n    token: ${env:TOKEN}\n")
    override = {"extra_configs": [str(overlay)], "env": {"TOKEN": "s3cret", "OTHER": "1"}}
    assert collector_slot.write_for(tmp_path, override) is True
    text = collector_slot.slot_paths(tmp_path)[1].read_text()
    assert "s3cret" in text and "TOKEN" not in text and "trap" not in text
    assert collector_slot.process_env(override) == {"OTHER": "1"}  # the process env keeps the rest
