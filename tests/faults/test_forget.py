"""`labctl down` drops active faults from the state: no fault override survives into the next `up`."""

from __future__ import annotations

import json
from pathlib import Path

from labctl.faults.engine import forget_faults
from labctl.faults.records import (
    ActiveFault,
    AuthFault,
    ContractVariant,
    FaultRecord,
    OverrideUndo,
    RelaySwitch,
    RulesCopy,
    TargetsRewrite,
    UpstreamFault,
)
from labctl.state import LabState


def _active(record: FaultRecord) -> ActiveFault:
    return ActiveFault(record=record, options={}, since=0.0, layer=2)


def test_forget_restores_overrides_targets_rules_and_removes_the_contract_variant(tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "collector.json").write_text(
        '[{"targets": ["127.0.0.1:8889"], "labels": {"__metrics_path__": "/x"}}]'
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    link = tmp_path / "prometheus-data" / "rules"
    link.mkdir(parents=True)  # a broken copy where the link to the repository's rules was
    variant = tmp_path / "lab" / "contracts" / "claude-code.yaml"
    variant.parent.mkdir(parents=True)
    variant.write_text("metrics: {}\n")
    lab = LabState(dir=tmp_path / "lab", stage="module-3")
    lab.overrides = {
        "proxy": {"env": {"LAB_PROXY_UPSTREAM": "grpc://127.0.0.1:1234", "KEEP": "me"}, "extra_configs": []},
        "collector": {"env": {"LAB_FAULT_AUTH_TOKEN": "t"}, "extra_configs": ["/x/faults/auth.yaml"]},
    }
    lab.faults = {
        "endpoint": _active(
            UpstreamFault(
                endpoint_kind="invalid-url",
                env={"LAB_PROXY_UPSTREAM": "grpc://127.0.0.1:1234"},
                overrides=[OverrideUndo("proxy", {"LAB_PROXY_UPSTREAM": None})],
            )
        ),
        "auth": _active(
            AuthFault(
                token="wrong",
                upstream="http://127.0.0.1:4317",
                secret="s",
                collector=OverrideUndo("collector", {"LAB_FAULT_AUTH_TOKEN": None}, ["/x/faults/auth.yaml"]),
                upstream_change={"asked": {}},
            )
        ),
        "contract": _active(
            ContractVariant(
                contract=str(variant),
                file=str(variant),
            )
        ),
        "scrape-path": _active(
            TargetsRewrite(str(targets), {"collector.json": '[{"targets": ["127.0.0.1:8889"]}]'})
        ),
        "broken-rules": _active(RulesCopy(str(link), str(rules), [400, "bad"])),
    }
    lab.save()
    assert sorted(forget_faults(LabState.load(lab.dir))) == [
        "auth",
        "broken-rules",
        "contract",
        "endpoint",
        "scrape-path",
    ]
    again = LabState.load(lab.dir)
    assert again.faults == {}
    assert again.overrides == {"proxy": {"env": {"KEEP": "me"}, "extra_configs": []}}
    assert not variant.exists()
    assert json.loads((targets / "collector.json").read_text()) == [{"targets": ["127.0.0.1:8889"]}]
    assert link.is_symlink() and link.resolve() == rules.resolve()


def test_forget_puts_the_scrape_relay_back_to_pass_for_the_next_up(tmp_path: Path) -> None:
    lab = LabState(dir=tmp_path / "lab", stage="module-3")
    saved = lab.data_dir("scrape-relay") / "mode.json"
    saved.parent.mkdir(parents=True)
    saved.write_text('{"mode": "blackhole", "latency_ms": 0}')
    lab.faults = {
        "network": _active(
            RelaySwitch("collector-prometheus", "blackhole", 0, "scrape-relay", "http://127.0.0.1:6")
        )
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
        "network": _active(
            RelaySwitch("prometheus-grafana", "refuse", 0, "query-relay", "http://127.0.0.1:7")
        )
    }
    lab.save()
    assert forget_faults(lab) == ["network"]
    assert json.loads(saved["query-relay"].read_text())["mode"] == "pass"
    assert json.loads(saved["scrape-relay"].read_text())["mode"] == "refuse"


def test_down_salvages_a_state_of_another_schema_and_resets_its_relays(tmp_path: Path) -> None:
    """`labctl down` is the fix the refusal names: it must read an older lab.json far enough to stop it,
    and leave no relay in a fault mode for the next `up` (its records cannot be read)."""
    directory = tmp_path / "lab"
    saved = directory / "services" / "scrape-relay" / "data" / "mode.json"
    saved.parent.mkdir(parents=True)
    saved.write_text('{"mode": "blackhole", "latency_ms": 0}')
    old = {
        "runtime": "native",
        "stage": "module-3",
        "instance": "default",
        "ports": {"proxy": {"admin": 4999}},
        "faults": {"network": {"record": {"hop": "collector-prometheus", "relays": []}}},
        "overrides": {"collector": {"env": {"X": "1"}, "extra_configs": []}},
        "settings": {"auth_token": "t"},
    }
    (directory / "lab.json").write_text(json.dumps(old))
    lab = LabState.load(directory, salvage=True)
    assert lab.salvaged and lab.stage == "module-3" and lab.ports == {"proxy": {"admin": 4999}}
    assert lab.faults == {} and lab.overrides == {}
    assert forget_faults(lab) == []
    assert json.loads(saved.read_text())["mode"] == "pass"
