"""Module 1's "break it, then find it" faults: break → check names layer 1 and the contract → heal → green.

The `contract` and `cardinality` faults were added for the module-1 exercises (labctl/faults/contract_faults.py);
this runs them the way the guide tells a student to, against a real proxy.
"""

from __future__ import annotations

import json

import pytest
import requests

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize("fault, rule", [("contract", "required"), ("cardinality", "cardinality")])
def test_module_1_fault_is_found_at_layer_1_and_heals(native_lab, labctl, fault, rule):
    lab = native_lab("module-1")
    state = lab.dir
    labctl("break", fault, state_dir=state)
    faults = json.loads(labctl("faults", "--json", state_dir=state).stdout)
    assert fault in json.dumps(faults)

    broken = labctl("check", "--layer", "1", "--json", state_dir=state, check=False)
    assert broken.returncode == 11, broken.stdout + broken.stderr
    results = json.loads(broken.stdout)
    failing = [r for r in (results.get("results", results) if isinstance(results, dict) else results)
               if r.get("verdict") == "FAIL"]
    assert failing and failing[0]["playbook"] == "contract-violation", failing

    # What the guide asks the student to find: the violated rule, on the proxy's own API.
    violations = requests.get(lab.url("proxy", "admin") + "/api/violations?limit=50", timeout=5).json()
    assert rule in json.dumps(violations)

    labctl("heal", fault, state_dir=state)
    healed = labctl("check", "--layer", "1", state_dir=state, check=False)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    contract = requests.get(lab.url("proxy", "admin") + "/api/contract", timeout=5).json()
    assert contract["path"].endswith("lab/contracts/claude-code.yaml")
