"""Blind challenges against a real native lab: every fault of the pool this stage can take is injected
hidden, every student-facing output is searched for its name and mechanism, then a right or a wrong
diagnosis is graded; and a class of instances is broken, listed and graded at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from labctl.faults import blind
from labctl.faults.registry import FAULTS
from labctl.runtimes.native import NativeRuntime
from labctl.state import LabState
from tests.conftest import labctl_env, run_labctl, started_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# How each fault works (what a student must find out, not be told), besides its name.
MECHANISM = {
    "network": ["blackhole", "black hole", "black-hol", "partition"],
    "latency": ["latency", "delay"],
    "endpoint": [
        "upstream changed",
        "retarget",
        "unreachable-host",
        "wrong-port",
        "protocol-mismatch",
        "invalid-url",
    ],
    "auth": ["bearertokenauth/fault", "LAB_FAULT_AUTH_TOKEN", "wrong-", "faults/auth"],
    "collector-crash": ["SIGKILL", "crash"],
    "memory-pressure": ["faults/memory-pressure", "memory-pressure"],
    "contract": ["faults/contract", "changed by"],
    "cardinality": ["faults/cardinality", "changed by"],
}
# The right diagnosis of each variant (`labctl diagnose` options) comes from blind.answer; a wrong one
# names another cause class.
WRONG = {
    "hop-cut": "credentials",
    "hop-slow": "hop-cut",
    "wrong-endpoint": "protocol-mismatch",
    "protocol-mismatch": "wrong-endpoint",
    "credentials": "hop-cut",
    "service-down": "hop-cut",
    "contract": "wrong-endpoint",
    "resource-limit": "service-down",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("blind") / "lab"
    with started_lab("module-2", state_dir):
        yield state_dir


def _outputs(state_dir: Path) -> dict[str, str]:
    """Everything a student can look at while the fault is hidden."""

    def cli(*args: str) -> str:
        res = run_labctl(*args, state_dir=state_dir, check=False, timeout=120)
        return res.stdout + res.stderr

    lab = LabState.load(state_dir)
    admin = lab.url("proxy", "admin")
    views = {"status": ("status",), "status --json": ("status", "--json")}
    views |= {"faults": ("faults",), "faults --json": ("faults", "--json")}
    logs = {f"logs {s}": ("logs", s, "-n", "400") for s in ("proxy", "collector", "otlp-relay")}
    # The two checks run one after the other (each compares the lab's counters before and after its own
    # marker); the views that only read the lab's state run beside them (about 4 s a round), and the logs
    # are read after them, so that they hold whatever the checks' markers made the services log.
    with ThreadPoolExecutor(max_workers=len(views) + 1) as pool:
        checks = pool.submit(lambda: {"check": cli("check"), "check --json": cli("check", "--json")})
        shown = {where: pool.submit(cli, *args) for where, args in views.items()}
        out = checks.result()
        logged = {where: pool.submit(cli, *args) for where, args in logs.items()}
        out |= {where: f.result() for where, f in (shown | logged).items()}
    for path in ("/", "/api/stats", "/api/contract", "/api/payloads?limit=5", "/api/violations", "/readyz"):
        try:
            out[path] = requests.get(admin + path, timeout=5).text
        except requests.RequestException as exc:
            out[path] = f"(no answer: {type(exc).__name__})"  # a proxy that is down is a symptom
    # The hop's permanent relay, natively: its status and its own log.
    out["otlp-relay /status"] = requests.get(lab.url("otlp-relay", "control") + "/status", timeout=5).text
    return out


def _variants() -> list[tuple[str, dict[str, Any]]]:
    """The pool as module-2 can take it (the scrape and query hops are module-3 and 4 faults: their relay
    switch is the same code, covered by tests/faults/test_faults_live.py)."""
    return [
        (n, o)
        for n, o in blind.variants()
        if set(FAULTS[n].needs) <= {"proxy", "collector"}
        and o.get("hop", "proxy-collector") == "proxy-collector"
        and n not in blind.TRAPS  # the configuration traps: tests/faults/test_traps_live.py
    ]


@pytest.mark.parametrize(
    "index", range(len(_variants())), ids=[f"{n}-{'-'.join(map(str, o.values()))}" for n, o in _variants()]
)
def test_every_fault_hidden_then_graded(lab: Path, index: int) -> None:
    try:
        _blind_round(lab, index)
    finally:  # a failed round must not leave its fault in the shared lab
        run_labctl("heal", "--all", state_dir=lab, check=False, timeout=120)


def _blind_round(lab: Path, index: int) -> None:
    name, opts = _variants()[index]
    args = [x for k, v in opts.items() for x in (f"--{k}", str(v))]
    broke = run_labctl("break", name, *args, "--hidden", state_dir=lab, timeout=120)
    assert name not in broke.stdout and "hidden fault is in effect" in broke.stdout
    assert "sealed" in json.loads((lab / "lab.json").read_text())
    assert name not in json.loads((lab / "lab.json").read_text())["faults"]

    outputs = _outputs(lab)
    check = json.loads(outputs["check --json"])
    assert check["blind"] is True and check["active_faults"] == []
    assert check["first_failing_layer"] == blind.answer(name, opts).layer, outputs["check"]
    forbidden = [
        f"break {name}",
        f"heal {name}",
        f"healed {name}",
        f"`{name}`",
        f"'{name}'",
        *MECHANISM[name],
    ]
    for where, text in outputs.items():
        # The name as a JSON string in labctl's own JSON (the APIs and logs have keys like "endpoint").
        for word in forbidden + ([f'"{name}"'] if where.endswith("--json") else []):
            assert word.lower() not in text.lower(), (
                f"{word!r} gives the {name} fault away in {where}:\n{text}"
            )
    if name in ("network", "latency"):  # the switched relay does not say its mode
        relay = json.loads(outputs["otlp-relay /status"])
        assert "mode" not in relay and "latency_ms" not in relay, relay
    failing = [r for r in check["results"] if r["verdict"] == "FAIL"]
    assert failing and all(r["cause"].startswith("one of: ") and r["playbook"] == "README" for r in failing)

    # A guessed name at `heal` neither confirms nor rules out the hidden fault.
    guess = run_labctl("heal", name, state_dir=lab, check=False)
    assert guess.returncode != 0 and "hidden fault is active" in guess.stderr + guess.stdout

    truth = blind.answer(name, opts)
    right = index % 2 == 0
    cause = truth.cause if right else WRONG[truth.cause]
    run_labctl(
        "diagnose",
        "--layer",
        str(truth.layer),
        "--hop",
        truth.hop,
        "--cause",
        cause,
        "--evidence",
        "check's layer table",
        "--fix",
        "undo the change",
        state_dir=lab,
    )
    revealed = json.loads(run_labctl("reveal", "--json", state_dir=lab, timeout=120).stdout)
    graded = revealed["graded"][0]
    assert graded["fault"] == name and graded["correct"] is right
    assert graded["score"] == (4 if right else 2)
    assert graded["pointers"] and graded["explanation"]
    after = LabState.load(lab)
    assert after.faults == {} and "diagnosis" not in after.settings
    assert after.settings["graded"][-1]["correct"] is right


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "class"
    with (
        started_lab("module-1", root / "alice"),
        started_lab("module-1", root / "bob"),
        started_lab("module-1", root / "carol"),
    ):
        yield root


def test_class_break_show_and_reveal(classroom: Path) -> None:
    root = str(classroom)
    # Alice passes the module-1 build-it exercise; Bob checks the starting file (a fail is no pass).
    repo = Path(__file__).resolve().parents[2]
    run_labctl(
        "exercise",
        "check",
        "contract-rule",
        str(repo / "lab/contracts/claude-code.yaml"),
        state_dir=classroom / "alice",
    )
    run_labctl("exercise", "start", "contract-rule", "--dir", str(classroom), state_dir=classroom / "bob")
    failed = run_labctl(
        "exercise",
        "check",
        "contract-rule",
        str(classroom / "my-contract.yaml"),
        state_dir=classroom / "bob",
        check=False,
    )
    assert failed.returncode == 1, failed.stdout
    broke = json.loads(
        run_labctl(
            "class",
            "break",
            "--root",
            root,
            "--seed",
            "3",
            "--pool",
            "contract,cardinality",
            "--json",
            timeout=240,
        ).stdout
    )
    assert [b["instance"] for b in broke] == ["alice", "bob", "carol"] and all(b["hidden"] for b in broke)
    # Alice diagnoses right, Bob wrong, Carol not at all.
    run_labctl(
        "diagnose",
        "--layer",
        "1",
        "--hop",
        "client-proxy",
        "--cause",
        "contract",
        "--evidence",
        "verdict violation on the marker",
        "--fix",
        "restore the contract",
        state_dir=classroom / "alice",
    )
    run_labctl(
        "diagnose",
        "--layer",
        "2",
        "--hop",
        "proxy-collector",
        "--cause",
        "hop-cut",
        "--evidence",
        "guess",
        "--fix",
        "guess",
        state_dir=classroom / "bob",
    )
    table = run_labctl("class", "show", "--root", root)
    for who in ("alice", "bob", "carol"):
        assert who in table.stdout
    for word in ("cardinality", "contract "):
        assert word not in table.stdout.replace("client-proxy, contract", "")
    shown = {
        r["instance"]: r for r in json.loads(run_labctl("class", "show", "--root", root, "--json").stdout)
    }
    assert all(r["hidden_fault"] for r in shown.values()) and shown["carol"]["diagnosed"] is False

    graded = json.loads(run_labctl("class", "reveal", "--root", root, "--json", timeout=240).stdout)
    result = {g["instance"]: g["graded"][0] for g in graded}
    assert result["alice"]["correct"] is True and result["alice"]["score"] == 4
    assert result["bob"]["correct"] is False and result["bob"]["score"] == 0
    assert result["carol"]["diagnosed"] is False and result["carol"]["correct"] is False
    after = {
        r["instance"]: r for r in json.loads(run_labctl("class", "show", "--root", root, "--json").stdout)
    }
    assert not any(r["hidden_fault"] for r in after.values())
    assert after["alice"]["last_grade"].endswith("4/4 right")
    assert {n: r["exercises_passed"] for n, r in after.items()} == {
        "alice": ["contract-rule"],
        "bob": [],
        "carol": [],
    }
    assert LabState.load(classroom / "bob").settings["exercises"]["contract-rule"]["last"] == "fail"
    # Carol's model stub dies: her lab is no longer green, the others are.
    carol = LabState.load(classroom / "carol")
    record = NativeRuntime(carol).record("model-stub")
    assert record is not None
    stub = psutil.Process(record.pid)
    stub.kill()
    stub.wait(10)
    now = {
        r["instance"]: r["health"]
        for r in json.loads(run_labctl("class", "show", "--root", root, "--json").stdout)
    }
    assert now["alice"]["green"] and now["bob"]["green"], now
    assert not now["carol"]["green"] and now["carol"]["unhealthy"] == ["model-stub"], now
    table = run_labctl("class", "show", "--root", root, env=labctl_env(COLUMNS="80")).stdout
    assert "contract-rule" in table and "model-stub" in table, table
