"""`labctl ports` and `labctl url`: the guides and playbooks reach every port through them, so they
must print the ports this lab really uses (free ports here, never the defaults)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from labctl.model import load_model
from tests.conftest import run_labctl, started_lab


@pytest.mark.integration
def test_ports_and_url_name_the_running_labs_ports(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    with started_lab("module-1", state_dir) as lab:
        listed = json.loads(run_labctl("ports", "--json", state_dir=state_dir).stdout)
        model = load_model()
        services = model.stage_services("module-1", "native")
        assert {(row["service"], row["port"]) for row in listed} == {
            (s, name) for s in services for name in model.service(s).ports
        }
        for row in listed:
            assert row["url"] == f"http://127.0.0.1:{lab.port(row['service'], row['port'])}"
            assert row["what"] == model.service(row["service"]).ports[row["port"]].what

        admin = run_labctl("url", "proxy.admin", state_dir=state_dir).stdout.strip()
        assert admin == f"http://127.0.0.1:{lab.port('proxy', 'admin')}"
        assert requests.get(f"{admin}/readyz", timeout=5).status_code == 200
        page = run_labctl("url", "proxy", state_dir=state_dir).stdout.strip()
        assert page == f"{admin}/"

        wrong_port = run_labctl("url", "proxy.health", state_dir=state_dir, check=False)
        assert wrong_port.returncode == 2
        assert "proxy has no port 'health'" in wrong_port.stderr and "admin" in wrong_port.stderr
        absent = run_labctl("url", "collector.health", state_dir=state_dir, check=False)
        assert absent.returncode == 2 and "collector is not part of module-1" in absent.stderr
