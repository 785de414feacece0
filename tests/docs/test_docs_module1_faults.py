"""Module 1's "break it, then find it" faults: break → check names layer 1 and the contract → heal → green.

The `contract` and `cardinality` faults were added for the module-1 exercises (labctl/faults/contract_faults.py);
this runs them the way the guide tells a student to, against a real proxy.
"""

from __future__ import annotations

import json

import pytest
import requests


@pytest.mark.integration
@pytest.mark.parametrize(("fault", "rule"), [("contract", "required"), ("cardinality", "cardinality")])
def test_module_1_fault_is_found_at_layer_1_and_heals(native_lab, labctl, fault, rule):
    lab = native_lab("module-1")
    state = lab.dir
    labctl("break", fault, state_dir=state)
    faults = json.loads(labctl("faults", "--json", state_dir=state).stdout)
    assert fault in json.dumps(faults)

    broken = labctl("check", "--layer", "1", "--json", state_dir=state, check=False)
    assert broken.returncode == 11, broken.stdout + broken.stderr
    results = json.loads(broken.stdout)
    failing = [
        r
        for r in (results.get("results", results) if isinstance(results, dict) else results)
        if r.get("verdict") == "FAIL"
    ]
    assert failing and failing[0]["playbook"] == "contract-violation", failing

    # What the guide asks the student to find: the violated rule, on the proxy's own API.
    violations = requests.get(lab.url("proxy", "admin") + "/api/violations?limit=50", timeout=5).json()
    assert rule in json.dumps(violations)

    labctl("heal", fault, state_dir=state)
    healed = labctl("check", "--layer", "1", state_dir=state, check=False)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    contract = requests.get(lab.url("proxy", "admin") + "/api/contract", timeout=5).json()
    assert contract["path"].endswith("lab/contracts/claude-code.yaml")


@pytest.mark.parametrize("kind", ["contract", "cardinality"])
def test_contract_variants_load_and_differ_as_described(tmp_path, kind):
    # The variant the fault writes is a valid contract (the proxy would refuse a broken one) that changes
    # exactly what the module-1 exercise asks the student to find.
    import yaml

    from labctl.contract import default_contract_path
    from labctl.contract.loader import read_contract_file
    from labctl.faults import contract_faults

    original = yaml.safe_load(default_contract_path().read_text(encoding="utf-8"))
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(contract_faults._variant(kind, original)), encoding="utf-8")
    spec = read_contract_file(path)
    base = read_contract_file(default_contract_path())
    assert set(spec.metrics) == set(base.metrics) and set(spec.events) == set(base.events)
    if kind == "contract":
        assert all(
            m.attributes[contract_faults.REQUIRED_ATTRIBUTE].requirement == "required"
            for m in spec.metrics.values()
        )
    else:
        for name in contract_faults.LIMITED_METRICS:
            assert spec.metrics[name].cardinality == {"*": 1}
