"""Where a lab listens: loopback by default; every interface with `up --bind 0.0.0.0` (a classroom server) for the services a
student opens or points a client at, with a warning — the Collector and the relays stay on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.model import Placement, bind_host, load_model
from tests.conftest import run_labctl, started_lab


def _listening(port: int) -> set[str]:
    """The local addresses a socket listens on for this port (from the kernel's own tables)."""
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 as the kernel lists them
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add("any" if set(addr) == {"0"} else "loopback" if addr in loopback else addr)
    return found


def test_only_the_shared_services_follow_the_bind_address() -> None:
    model = load_model()
    shared = {"bind": "0.0.0.0"}
    assert bind_host("proxy", shared) == bind_host("grafana", shared) == "0.0.0.0"
    assert bind_host("collector", shared) == bind_host("scrape-relay", shared) == "127.0.0.1"
    assert bind_host("proxy", {}) == "127.0.0.1"
    where = Placement(runtime="native", ports={}, repo=model.root, settings=shared)
    assert model.resolve("{listen:prom_exporter}", "collector", where).startswith("127.0.0.1:")
    assert model.resolve("{listen:web}", "prometheus", where).startswith("0.0.0.0:")


@pytest.mark.integration  # runs the CLI (starts nothing else)
def test_an_unsupported_bind_address_is_refused_before_anything_starts(tmp_path: Path) -> None:
    res = run_labctl("up", "module-1", "--bind", "10.1.2.3", state_dir=tmp_path / "lab", check=False)
    assert res.returncode != 0 and "--bind '10.1.2.3' is not supported" in res.stdout + res.stderr
    assert not (tmp_path / "lab" / "lab.json").exists()


@pytest.mark.integration
def test_bind_every_interface_then_back_to_loopback(tmp_path: Path) -> None:
    with started_lab("module-1", tmp_path / "lab", "--bind", "0.0.0.0") as lab:
        admin, stub = lab.ports["proxy"]["admin"], lab.ports["model-stub"]["api"]
        assert _listening(admin) == {"any"} and _listening(stub) == {"any"}
        again = run_labctl("up", "module-1", state_dir=lab.dir)  # the setting is kept, and so is the warning
        assert "reachable from other machines" in again.stdout + again.stderr
        assert "add --auth" in again.stdout + again.stderr
        back = run_labctl("up", "module-1", "--bind", "127.0.0.1", state_dir=lab.dir)
        assert "reachable from other machines" not in back.stdout + back.stderr
        assert _listening(admin) == {"loopback"} and _listening(stub) == {"loopback"}
