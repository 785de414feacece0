"""The fault table: names, options and errors a student sees; every fault links a real playbook/alert."""

from __future__ import annotations

import re
from pathlib import Path

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
    from labctl.faults.engine import neutral_summary

    network = {
        "record": {
            "hop": "proxy-collector",
            "mode": "blackhole",
            "relays": [{"addr": "127.0.0.1:5"}],
            "upstream_change": {"asked": {"endpoint": "http://127.0.0.1:5"}},
        }
    }
    assert neutral_summary(network) == "proxy upstream changed (at runtime, no restart)"
    scrape = {"record": {"hop": "collector-prometheus", "relays": [], "targets_dir": "/t", "originals": {}}}
    assert neutral_summary(scrape) == "Prometheus scrape targets changed"
    switched = {
        "record": {
            "hop": "collector-prometheus",
            "mode": "blackhole",
            "relays": [],
            "switch": {"service": "scrape-relay", "control": "http://127.0.0.1:6"},
        }
    }
    assert neutral_summary(switched) == "scrape-relay switched (at runtime, no restart)"
    crash = {"record": {"service": "collector", "signal": "KILL"}}
    assert neutral_summary(crash) == "collector process changed"
    contract = {
        "record": {
            "service": "proxy",
            "undo": {"service": "proxy", "env_before": {"LAB_PROXY_CONTRACT": None}, "configs_added": []},
        }
    }
    assert neutral_summary(contract) == "proxy settings changed"
    for entry in (network, scrape, switched, crash, contract):
        text = neutral_summary(entry)
        assert "127.0.0.1" not in text and "black" not in text and "resolve" not in text
