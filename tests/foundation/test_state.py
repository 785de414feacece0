"""Lab state: ports (defaults, --port-offset, --free-ports), persistence, and the no-lab error."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from labctl import state
from labctl.errors import LabError
from labctl.faults.records import ActiveFault, ProcessFault
from labctl.model import load_model
from labctl.state import LabState, allocate_ports


def test_port_offset_shifts_every_host_port():
    defaults = load_model().default_ports()
    shifted = allocate_ports(defaults, offset=100)
    for service, ports in defaults.items():
        for name, port in ports.items():
            assert shifted[service][name] == port + 100
    with pytest.raises(LabError, match="invalid ports"):
        allocate_ports(defaults, offset=60000)


def test_free_ports_are_distinct_and_bindable():
    chosen = allocate_ports(load_model().default_ports(), free=True)
    flat = [p for ports in chosen.values() for p in ports.values()]
    assert len(flat) == len(set(flat)) == sum(len(s.ports) for s in load_model().services.values())
    for port in flat:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_state_round_trips_faults_settings_and_overrides(tmp_path: Path):
    lab = LabState(dir=tmp_path, runtime="native", stage="module-2", ports={"proxy": {"admin": 4999}})
    lab.faults["collector-crash"] = ActiveFault(
        record=ProcessFault("collector", "KILL"), options={"signal": "KILL"}, since=1.5, layer=2
    )
    lab.settings["auth_token"] = "s3cret"
    lab.overrides["collector"] = {"extra_configs": ["/x.yaml"], "env": {"A": "1"}}
    lab.save()
    again = LabState.load(tmp_path)
    assert again.faults == lab.faults
    assert json.loads((tmp_path / "lab.json").read_text())["faults"]["collector-crash"]["record"] == {
        "kind": "process",
        "service": "collector",
        "signal": "KILL",
    }
    assert again.settings["auth_token"] == "s3cret"
    assert again.overrides["collector"]["env"] == {"A": "1"}
    assert again.url("proxy", "admin") == "http://127.0.0.1:4999"
    assert again.addr("proxy", "admin") == "127.0.0.1:4999"
    assert again.log_path("proxy") == tmp_path / "services" / "proxy" / "proxy.log"
    assert again.data_dir("proxy") == tmp_path / "services" / "proxy" / "data"
    assert json.loads((tmp_path / "lab.json").read_text())["stage"] == "module-2"
    with pytest.raises(LabError, match=r"no port proxy\.nope"):
        again.url("proxy", "nope")


@pytest.mark.parametrize("schema", [None, 1, 99])
def test_a_state_of_another_schema_is_refused_with_the_fix(tmp_path: Path, schema: int | None):
    data = {"runtime": "native", "stage": "module-2", "faults": {"network": {"record": {"relays": []}}}}
    if schema is not None:
        data["schema"] = schema
    (tmp_path / "lab.json").write_text(json.dumps(data))
    with pytest.raises(LabError) as err:
        LabState.load(tmp_path)
    assert "another version of labctl" in err.value.message
    assert f"state schema {schema or 'none'}" in err.value.message
    assert "labctl down" in (err.value.hint or "")


def test_an_unreadable_fault_record_is_refused_with_the_fix(tmp_path: Path):
    lab = LabState(dir=tmp_path, stage="module-2")
    lab.save()
    data = json.loads((tmp_path / "lab.json").read_text())
    data["faults"] = {"network": {"record": {"kind": "teleport"}, "options": {}, "since": 0, "layer": 2}}
    (tmp_path / "lab.json").write_text(json.dumps(data))
    with pytest.raises(LabError) as err:
        LabState.load(tmp_path)
    assert "unknown kind 'teleport'" in err.value.message and "labctl down" in (err.value.hint or "")


def test_no_lab_is_a_clear_error(tmp_path: Path):
    with pytest.raises(LabError) as err:
        LabState.load(tmp_path)
    assert "no lab is running" in err.value.message
    assert "labctl up module-1" in (err.value.hint or "")


def test_state_dir_follows_options_then_env_then_instance(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("LABCTL_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    try:
        state.configure(instance="class-b")
        assert state.state_dir() == (tmp_path / "xdg" / "labctl" / "class-b").resolve()
        monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "env"))
        assert state.state_dir() == (tmp_path / "env").resolve()
        state.configure(state_dir=tmp_path / "opt")
        assert state.state_dir() == (tmp_path / "opt").resolve()
        state.configure(instance="../etc")
        with pytest.raises(LabError, match="invalid instance name"):
            state.instance_name()
    finally:
        state.configure()
