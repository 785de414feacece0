"""The fault table: names, options and errors a student sees; every fault links a real playbook/alert."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import LabError
from labctl.faults.engine import get_fault, parse_options
from labctl.faults.registry import FAULTS

REPO = Path(__file__).resolve().parents[2]


def test_unknown_fault_lists_every_fault() -> None:
    with pytest.raises(LabError) as err:
        get_fault("bogus")
    assert "unknown fault 'bogus'" in err.value.message
    for name in FAULTS:
        assert name in (err.value.hint or "")
    assert "labctl faults --all" in (err.value.hint or "") and len(err.value.hint or "") < 400


def test_a_mistyped_fault_is_named() -> None:
    with pytest.raises(LabError) as err:
        get_fault("netwrok")
    assert err.value.message == "unknown fault 'netwrok': did you mean 'network'?"


def test_options_positional_flag_and_key_value() -> None:
    latency = get_fault("latency")
    assert parse_options(latency, ["250"]) == {"ms": 250, "hop": "proxy-collector"}
    assert parse_options(latency, ["--ms", "40", "--hop=collector-prometheus"]) == {
        "ms": 40,
        "hop": "collector-prometheus",
    }
    assert parse_options(get_fault("network"), ["mode=refuse"]) == {
        "hop": "proxy-collector",
        "mode": "refuse",
    }
    assert parse_options(get_fault("endpoint"), []) == {"kind": "unreachable-host"}


@pytest.mark.parametrize(
    ("fault", "args", "message"),
    [
        ("network", ["--mode", "explode"], "--mode 'explode' is not one of hang, refuse"),
        ("latency", ["--ms", "soon"], "--ms must be a whole number"),
        ("latency", ["--ms", "-5"], "must not be negative"),
        ("network", ["--colour", "red"], "has no option --colour"),
        ("network", ["--mode"], "--mode needs a value"),
        ("storage-down", ["extra"], "unexpected argument 'extra'"),
        ("latency", ["10", "20"], "unexpected argument '20'"),
    ],
)
def test_bad_options_are_named_with_the_fix(fault: str, args: list[str], message: str) -> None:
    with pytest.raises(LabError) as err:
        parse_options(get_fault(fault), args)
    assert message in err.value.message
    assert err.value.hint


def test_every_fault_links_an_existing_playbook_and_alert_rule() -> None:
    rules = "".join(p.read_text() for p in (REPO / "lab" / "prometheus" / "rules").glob("*.yml"))
    alert_names = set(re.findall(r"alert:\s*(\S+)", rules))
    for fault in FAULTS.values():
        assert fault.playbook and (REPO / "lab" / "playbooks" / f"{fault.playbook}.md").is_file(), fault.name
        defaults = {o.name: o.default for o in fault.options}
        variants = [defaults] + [{**defaults, o.name: c} for o in fault.options for c in o.choices]
        for opts in variants:
            alert = fault.alert(opts)
            assert alert is None or alert in alert_names, (fault.name, opts, alert)


def test_required_faults_exist() -> None:
    assert {"network", "endpoint", "auth", "latency", "collector-crash", "storage-down"} <= set(FAULTS)


def test_break_output_is_neutral_by_default() -> None:
    from labctl.faults.records import (
        ActiveFault,
        ContractVariant,
        DockerCut,
        OverrideUndo,
        ProcessFault,
        RelaySwitch,
        UpstreamFault,
    )

    def entry(record: Any) -> ActiveFault:
        return ActiveFault(record=record, options={}, since=0.0, layer=2)

    endpoint = entry(
        UpstreamFault(
            endpoint_kind="wrong-port",
            env={"LAB_PROXY_UPSTREAM": "http://127.0.0.1:5"},
            upstream_change={"asked": {"endpoint": "http://127.0.0.1:5"}},
        )
    )
    assert endpoint.summary() == "proxy upstream changed (at runtime, no restart)"
    invalid = entry(
        UpstreamFault(
            endpoint_kind="invalid-url",
            env={"LAB_PROXY_UPSTREAM": "grpc://collector:4317"},
            overrides=[OverrideUndo("proxy", {"LAB_PROXY_UPSTREAM": None})],
        )
    )
    assert invalid.summary() == "proxy upstream changed"
    cut = entry(DockerCut("collector-prometheus", "blackhole", "collector", "n_scrape", "c-1", "c-cut"))
    assert cut.summary() == "collector's network changed"
    switched = entry(
        RelaySwitch("collector-prometheus", "blackhole", 0, "scrape-relay", "http://127.0.0.1:6")
    )
    assert switched.summary() == "scrape-relay switched (at runtime, no restart)"
    crash = entry(ProcessFault("collector", "KILL"))
    assert crash.summary() == "collector process changed"
    contract = entry(
        ContractVariant(
            contract="/x/contracts/claude-code.yaml",
            file="/x/contracts/claude-code.yaml",
        )
    )
    assert contract.summary() == "proxy settings changed"
    for e in (endpoint, invalid, cut, switched, crash, contract):
        text = e.summary()
        assert "127.0.0.1" not in text and "black" not in text and "resolve" not in text
