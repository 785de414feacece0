"""The configuration traps, the scrape, event-store and alerting hops' faults and a stopped Prometheus
as hidden faults, against one real native module-4 lab (Grafana cannot run here: its trap is proven on the provisioned files and layer 4's check
against Prometheus; the Grafana hop's faults need a running Grafana to show, so the random pool leaves
them out of such a lab).

For each trap: `labctl break --hidden NAME`; `check --json` fails first at the trap's layer with the
evidence that tells it apart; nothing a student can see names it or its mechanism (check, status,
faults, the services' logs, the lab's file names, its processes' command lines); a right diagnosis
scores 4/4 at `reveal`, which heals it back to the lab's exact previous overrides. A green check at
the end proves every trap healed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.faults import blind
from labctl.state import LabState
from tests.conftest import run_labctl, started_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# trap -> (words that would give it away, evidence a failing row of its layer must show)
TRAPS = {
    "delta-temporality": (["delta_to_cumulative", "temporality"], "claude_code_commit_count_total at 1"),
    "series-expiry": (["metric_expiration", "expiry"], "exporter took +"),
    "no-logs-pipeline": (["logs pipeline", "no-logs"], "UNIMPLEMENTED"),
    "per-request-label": (["per-request", "dimensions"], "has one value per request"),
    "scrape-path": (["scrape-path", "scrape path"], "404 Not Found"),
    "broken-rules": (["broken-rules", "rules-copy"], "reloadConfigSuccess false"),
    "datasource-uid": (["datasource-uid", "foreign"], "uid P1809F7CD0C75ACF3"),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("traps") / "lab"
    with started_lab("module-4", state_dir):
        try:
            yield state_dir
            code, report = _check(state_dir)
            assert code == 0, json.dumps(report, indent=1)
        finally:
            run_labctl("heal", "--all", state_dir=state_dir, check=False, timeout=120)


def _check(lab: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    res = run_labctl("check", "--json", state_dir=lab, check=False, timeout=120)
    assert res.stdout.strip(), res.stderr
    return res.returncode, json.loads(res.stdout)


def _visible(lab: Path) -> dict[str, str]:
    """What a student can look at besides check: the services' logs (the files `labctl logs` prints;
    test_blind_live.py covers the CLI views), the lab's file names, its processes' command lines."""
    state = LabState.load(lab)
    out = {
        f"log {service}": state.log_path(service).read_text(errors="replace")[-60_000:]
        for service in (
            *("proxy", "collector", "prometheus", "otlp-relay", "scrape-relay", "query-relay"),
            *(
                "victorialogs",
                "events-relay",
                "alertmanager",
                "notify-receiver",
                "alert-relay",
                "notify-relay",
            ),
        )
        if state.log_path(service).exists()
    }
    out["file names"] = "\n".join(str(p.relative_to(lab)) for p in lab.rglob("*"))
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    out["command lines"] = "\n".join(line for line in ps.splitlines() if str(lab) in line)
    return out


# The scrape hop's variants of the pool: (fault, options, words that would give it away, evidence).
SCRAPE_HOP = [
    (
        "network",
        {"hop": "collector-prometheus", "mode": "hang"},
        ["blackhole", "black hole", "partition"],
        "no answer within",
    ),
    ("network", {"hop": "collector-prometheus", "mode": "refuse"}, ["blackhole", "refuse mode"], "refused"),
    (
        "latency",
        {"hop": "collector-prometheus", "ms": blind.SLOW_SCRAPE_MS},
        ["latency", "delay"],
        "first byte after",
    ),
]


# The event and trace stores' and the alerting hops: the pool cuts them (hang or refuse; a delay would
# only make the stored event or span or the notification come later). One mode each keeps the file
# lean; both modes go through the same relay switch as the scrape hop's.
OTHER_HOPS = [
    ("collector-victorialogs", "refuse", 3, "event(s) in VictoriaLogs after"),
    ("collector-jaeger", "hang", 3, "span(s) in Jaeger after"),
    ("prometheus-alertmanager", "hang", 4, "failed sends to Alertmanager"),
    ("alertmanager-receiver", "refuse", 4, "failed webhook deliveries"),
]


@pytest.mark.parametrize("name", list(TRAPS))
def test_trap_hidden_found_and_graded(lab: Path, name: str) -> None:
    words, evidence = TRAPS[name]
    _blind_round(lab, name, {}, words, evidence)


@pytest.mark.parametrize(("name", "opts", "words", "evidence"), SCRAPE_HOP, ids=["cut", "refused", "slow"])
def test_scrape_hop_hidden_found_and_graded(
    lab: Path, name: str, opts: dict[str, object], words: list[str], evidence: str
) -> None:
    assert (name, opts) in blind.variants([name]), "the variant must be one the random pool draws"
    _blind_round(lab, name, opts, words, evidence)


@pytest.mark.parametrize(("hop", "mode", "layer", "evidence"), OTHER_HOPS, ids=[h for h, *_ in OTHER_HOPS])
def test_store_and_alerting_hops_hidden_found_and_graded(
    lab: Path, hop: str, mode: str, layer: int, evidence: str
) -> None:
    opts = {"hop": hop, "mode": mode}
    assert ("network", opts) in blind.variants(["network"]), "the variant must be one the random pool draws"
    assert blind.answer("network", opts).layer == layer
    _blind_round(lab, "network", opts, ["blackhole", "black hole", "partition", "refuse mode"], evidence)


def test_stopped_storage_hidden_found_and_graded(lab: Path) -> None:
    """The pool's one fault that needs Prometheus but is neither a trap nor on a hop."""
    assert ("storage-down", {}) in blind.variants(["storage-down"])
    _blind_round(lab, "storage-down", {}, ["storage-down", "SIGTERM"], "/-/ready: ")


def _blind_round(lab: Path, name: str, opts: dict[str, object], words: list[str], evidence: str) -> None:
    before = LabState.load(lab).overrides
    args = [x for k, v in opts.items() for x in (f"--{k}", str(v))]
    try:
        broke = run_labctl("break", name, *args, "--hidden", state_dir=lab, timeout=120)
        assert name not in broke.stdout + broke.stderr

        code, report = _check(lab)
        truth = blind.answer(name, opts)
        assert report["blind"] is True and report["first_failing_layer"] == truth.layer, report
        assert code == 10 + truth.layer
        failing = [r for r in report["results"] if r["verdict"] == "FAIL" and r["layer"] == truth.layer]
        assert any(evidence in e for r in failing for e in r["evidence"]), json.dumps(failing, indent=1)
        assert all(r["cause"].startswith("one of: ") for r in failing), failing

        seen = {"check --json": json.dumps(report), **_visible(lab)}
        for where, text in seen.items():
            # File names: the fault's name only (a store's own folders may say "partitions").
            for word in [name] if where == "file names" else [name, *words]:
                assert word.lower() not in text.lower(), f"{word!r} gives {name} away in {where}:\n{text}"

        run_labctl(
            "diagnose",
            *("--layer", str(truth.layer), "--hop", truth.hop, "--cause", truth.cause),
            *("--evidence", "check's failing row", "--fix", "undo the change"),
            state_dir=lab,
        )
        graded = json.loads(run_labctl("reveal", "--json", state_dir=lab, timeout=120).stdout)["graded"][0]
        assert graded["fault"] == name and graded["correct"] is True and graded["score"] == 4
        after = LabState.load(lab)
        assert after.faults == {} and after.overrides == before
    except BaseException:  # a failed round must not leave its trap in the shared lab
        run_labctl("heal", "--all", state_dir=lab, check=False, timeout=120)
        raise
