"""`labctl down` drops active faults from the state: no fault override survives into the next `up`."""

from __future__ import annotations

import json
from pathlib import Path

from labctl.faults.engine import forget_faults
from labctl.state import LabState


def test_forget_restores_overrides_and_targets(tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "collector.json").write_text('[{"targets": ["127.0.0.1:9999"]}]')
    lab = LabState(dir=tmp_path / "lab", stage="module-3")
    lab.overrides = {
        "proxy": {"env": {"LAB_PROXY_UPSTREAM": "http://127.0.0.1:1234", "KEEP": "me"}, "extra_configs": []},
        "collector": {"env": {"LAB_FAULT_AUTH_TOKEN": "t"}, "extra_configs": ["/x/faults/auth.yaml"]},
    }
    lab.faults = {
        "network": {
            "record": {
                "overrides": [
                    {"service": "proxy", "env_before": {"LAB_PROXY_UPSTREAM": None}, "configs_added": []}
                ],
                "relays": [],
                "targets_dir": str(targets),
                "originals": {"collector.json": '[{"targets": ["127.0.0.1:8889"]}]'},
            }
        },
        "auth": {
            "record": {
                "overrides": [
                    {
                        "service": "collector",
                        "env_before": {"LAB_FAULT_AUTH_TOKEN": None},
                        "configs_added": ["/x/faults/auth.yaml"],
                    }
                ]
            }
        },
        "contract": {
            "record": {
                "undo": {"service": "proxy", "env_before": {"LAB_PROXY_CONTRACT": None}, "configs_added": []}
            }
        },
    }
    lab.overrides["proxy"]["env"]["LAB_PROXY_CONTRACT"] = "/x/variant.yaml"
    lab.save()
    assert sorted(forget_faults(lab)) == ["auth", "contract", "network"]
    again = LabState.load(lab.dir)
    assert again.faults == {}
    assert again.overrides == {"proxy": {"env": {"KEEP": "me"}, "extra_configs": []}}
    assert json.loads((targets / "collector.json").read_text())[0]["targets"] == ["127.0.0.1:8889"]


def test_forget_puts_the_scrape_relay_back_to_pass_for_the_next_up(tmp_path: Path) -> None:
    lab = LabState(dir=tmp_path / "lab", stage="module-3")
    saved = lab.data_dir("scrape-relay") / "mode.json"
    saved.parent.mkdir(parents=True)
    saved.write_text('{"mode": "blackhole", "latency_ms": 0}')
    lab.faults = {
        "network": {
            "record": {
                "hop": "collector-prometheus",
                "mode": "blackhole",
                "relays": [],
                "switch": {"service": "scrape-relay", "routes": []},
            }
        }
    }
    lab.save()
    assert forget_faults(lab) == ["network"]
    assert json.loads(saved.read_text())["mode"] == "pass", (
        "a relay started by the next `up` must not cut the hop"
    )


def test_forget_puts_the_query_relay_back_to_pass_and_leaves_the_scrape_relay_alone(tmp_path: Path) -> None:
    """Each relay keeps its own mode file: forgetting Grafana's hop fault resets the query relay only."""
    lab = LabState(dir=tmp_path / "lab", stage="module-4")
    saved = {}
    for service in ("query-relay", "scrape-relay"):
        saved[service] = lab.data_dir(service) / "mode.json"
        saved[service].parent.mkdir(parents=True)
        saved[service].write_text('{"mode": "refuse", "latency_ms": 0}')
    lab.faults = {
        "network": {
            "record": {
                "hop": "prometheus-grafana",
                "mode": "refuse",
                "relays": [],
                "switch": {"service": "query-relay", "routes": []},
            }
        }
    }
    lab.save()
    assert forget_faults(lab) == ["network"]
    assert json.loads(saved["query-relay"].read_text())["mode"] == "pass"
    assert json.loads(saved["scrape-relay"].read_text())["mode"] == "refuse"
