"""Blind diagnosis: hidden faults, what the tools may say while one is active, and grading.

An instructor (or a partner) injects a fault with `labctl break --hidden NAME` or `--random --seed N`;
nothing names it. While a hidden fault is active the lab is *blind*: `labctl check` keeps its evidence
but its cause column lists candidate explanations for the failing layer instead of the answer, its
playbook column points at the playbook index, and `faults`, `heal` and `break` do not name the fault.
The student records a diagnosis (`labctl diagnose`); `labctl reveal` grades it against the fault's
answer (layer, hop, cause class), explains the fault and the evidence that pointed to it, and heals.

Hidden entries are sealed in lab.json (labctl/state.py): a glance at the file gives nothing away, but it
is not a secret from a student who decodes it — the exercise is about reading the pipeline, not a lock.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from labctl.checks.result import CheckResult
from labctl.errors import LabError
from labctl.faults.records import ActiveFault
from labctl.faults.trap_answers import SENDER_RETRIES, TRAP_ANSWERS, Answer
from labctl.model import load_model
from labctl.state import LabState

# What a diagnosis names: the cause classes a student chooses from (the --cause of `labctl diagnose`).
CAUSES: dict[str, str] = {
    "service-down": "a service of the pipeline is not running",
    "hop-cut": "a hop between two services is cut: connections hang or are refused",
    "hop-slow": "a hop between two services is slow (added latency)",
    "wrong-endpoint": "a client points at the wrong endpoint (host, port or URL)",
    "protocol-mismatch": "a client speaks the other OTLP protocol than the port it sends to",
    "credentials": "a receiver rejects the sender's credentials",
    "contract": "the data no longer satisfies the contract it is checked against",
    "resource-limit": "a service refuses work because of its own resource limit (memory, queue)",
    "temporality": "delta counters are not made cumulative: totals come out too low",
    "series-expiry": "a service forgets idle series before they are read",
    "missing-pipeline": "a signal has no pipeline that receives it: its data is refused and lost",
    "cardinality": "a label takes a new value on every request: series multiply with traffic",
    "scrape-config": "Prometheus scrapes the wrong address or path",
    "rule-file": "a rule file does not load: Prometheus keeps running on its old configuration",
    "datasource": "a dashboard refers to a datasource that does not exist",
}
POINTS = {"layer": 1, "hop": 1, "cause": 2}
# The pool grades faults on lab.yaml's hops of these kinds: the metrics path, the event and trace
# stores' hops (events, traces) and module-4's alerting hops (alert, notify).
GRADED_HOP_KINDS = ("push", "scrape", "query", "events", "traces", "alert", "notify")
# check waits for the stored event and span and for the notification, so a delay on these hops only
# makes them arrive later and no delay it tolerates shows: the pool cuts them, never slows them.
UNSEEN_SLOW_KINDS = ("events", "traces", "alert", "notify")


def graded_hops() -> tuple[str, ...]:
    """The hops (lab.yaml, in its order) a graded fault can be on."""
    return tuple(h.name for h in load_model().distinct_hops() if h.kind in GRADED_HOP_KINDS)


def hops() -> tuple[str, ...]:
    """What a diagnosis names as the hop: a graded hop, or `none` when the fault is in a service."""
    return (*graded_hops(), "none")


# The candidates `check` offers for a failing layer while the lab is blind: every explanation that fits
# that layer's symptoms, so the evidence (not the tool) has to tell them apart.
CANDIDATES: dict[int, list[str]] = {
    1: [
        "the proxy is not running or not ready",
        "the client sends to the wrong endpoint or without the lab's token",
        "the data breaks the contract the proxy checks it against (attributes, cardinality)",
    ],
    2: [
        "the Collector is not running",
        "the Collector's pipeline configuration does not fit the data it gets",
        "the proxy→Collector hop is cut (connections hang, or are refused)",
        "the proxy→Collector hop is slow",
        "the proxy's upstream endpoint is wrong (host, port or URL)",
        "the proxy speaks the other OTLP protocol than the Collector's port",
        "the Collector rejects the proxy's credentials",
        "the Collector refuses data because of its own limits (memory, queue)",
        "the Collector's configuration turns a value that changes per request into a label",
    ],
    3: [
        "Prometheus is not running",
        "the Collector→Prometheus scrape hop is cut (scrapes hang, or are refused)",
        "the scrape hop is slow",
        "Prometheus' scrape configuration (address, path) is wrong",
        "Prometheus could not load its latest configuration or rules",
        "the Collector is not running, so there is nothing to scrape",
        "the event store is not running, or the Collector→event store hop is cut",
        "the trace store is not running, or the Collector→trace store hop is cut",
        "an earlier layer fails, so there is nothing to store",
    ],
    4: [
        "Grafana is not running",
        "the Prometheus→Grafana query hop is cut or slow",
        "the dashboards' datasource references do not match the provisioned datasource",
        "Alertmanager or the notification receiver is not running",
        "the Prometheus→Alertmanager hop or the Alertmanager→receiver hop is cut",
        "an earlier layer fails, so there is nothing to show",
    ],
}


def answer(name: str, options: dict[str, Any]) -> Answer:
    """The right diagnosis for a fault with these options."""
    hop = str(options.get("hop") or "proxy-collector")
    layer = load_model().hop(hop).layer  # where a fault on this hop shows first (lab.yaml)
    if name == "network":
        how = "hang (a black hole)" if options.get("mode") != "refuse" else "are refused"
        return Answer(
            layer,
            hop,
            "hop-cut",
            f"the {hop} hop was cut: connections {how}",
            (
                f"layer {layer} fails first while the services on both sides are running and healthy",
                "a TCP probe of the hop: it connects and never answers (hang), or is refused",
                SENDER_RETRIES.get(hop, "the sender keeps retrying (proxy: state retrying)"),
            ),
        )
    if name == "latency":
        return Answer(
            layer,
            hop,
            "hop-slow",
            f"the {hop} hop was slowed by {options.get('ms')} ms per chunk",
            (
                "the data still arrives, late",
                "check's timed probe: it connects and answers, but slower than the hop's budget",
                "scrape_duration_seconds / the proxy's export time rise; no error",
            ),
        )
    if name == "endpoint":
        kind = str(options.get("kind"))
        if kind == "protocol-mismatch":
            return Answer(
                2,
                "proxy-collector",
                "protocol-mismatch",
                "the proxy's upstream protocol was switched (gRPC vs OTLP/HTTP) on the same port",
                (
                    "the port accepts connections",
                    "an export in the proxy's protocol fails with a protocol error on a port that answers",
                ),
            )
        what = {
            "unreachable-host": "a host name that does not resolve",
            "wrong-port": "a port nothing listens on",
            "invalid-url": "a URL with a non-http scheme",
        }
        # An invalid URL stops the proxy itself: the failure shows (and is found) at layer 1.
        return Answer(
            1 if kind == "invalid-url" else 2,
            "proxy-collector",
            "wrong-endpoint",
            f"the proxy's upstream was set to {what.get(kind, 'a wrong endpoint')}",
            (
                "the proxy's upstream (in /api/stats or its log) is not the Collector's address",
                "DNS lookup fails, or the port refuses, or the proxy will not start",
            ),
        )
    if name == "auth":
        return Answer(
            2,
            "proxy-collector",
            "credentials",
            "the Collector started to require a bearer token; the proxy sends "
            + ("none" if options.get("token") == "missing" else "a wrong one"),
            ("the Collector answers UNAUTHENTICATED / HTTP 401", "the proxy's state is auth_failed"),
        )
    if name == "collector-crash":
        return Answer(
            2,
            "none",
            "service-down",
            "the Collector process was killed",
            ("`labctl status`: the Collector is not running", "its ports refuse connections"),
        )
    if name == "memory-pressure":
        return Answer(
            2,
            "none",
            "resource-limit",
            "the Collector's memory_limiter was set far below the heap it needs: it refuses every export",
            (
                "the Collector is up and healthy, the hop answers",
                "otelcol_receiver_refused_metric_points climbs (check's collector pipeline row)",
                "the Collector's log: data refused due to high memory usage; CollectorReceiverRefusing fires",
            ),
        )
    trap = _TRAPS.get(name)
    if trap is not None:
        return trap
    if name == "storage-down":
        return Answer(
            3,
            "none",
            "service-down",
            "Prometheus was stopped",
            ("`labctl status`: Prometheus is not running", "its web port refuses connections"),
        )
    if name in ("contract", "cardinality"):
        change = (
            "now requires an attribute the application does not send"
            if name == "contract"
            else "allows one series per token/cost metric"
        )
        return Answer(
            1,
            "client-proxy",
            "contract",
            f"the proxy's contract was replaced: it {change}",
            (
                "the marker arrives but its verdict is violation",
                "/api/contract is another file",
                "/api/violations names the rule",
            ),
        )
    raise LabError(f"no answer is known for fault {name!r}", "blind challenges use the faults of the pool")


_TRAPS = TRAP_ANSWERS
TRAPS = frozenset(_TRAPS)


# --- the pool: every fault variant a random challenge can draw ------------------------------------


def variants(names: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every (fault, options) with each choice option at each of its values, int options at default."""
    from labctl.faults.registry import FAULTS

    out: list[tuple[str, dict[str, Any]]] = []
    graded = graded_hops()
    unseen_slow = {h.name for h in load_model().distinct_hops() if h.kind in UNSEEN_SLOW_KINDS}
    for name, fault in FAULTS.items():
        if names and name not in names:
            continue
        choices = [
            [(o.name, c) for c in o.choices] if o.choices else [(o.name, o.default)] for o in fault.options
        ]
        for combo in itertools.product(*choices):
            opts = dict(combo)
            if "hop" in opts and opts["hop"] not in graded:
                continue  # no graded answer for this hop
            if name == "latency" and opts["hop"] in unseen_slow:
                continue
            if name == "latency" and opts.get("hop") == "collector-prometheus":
                # A scrape half a second late is still a good scrape: only a delay past the 4 s scrape
                # timeout shows (and check's timed probe tells it from a cut hop).
                opts["ms"] = SLOW_SCRAPE_MS
            out.append((name, opts))
    return out


SLOW_SCRAPE_MS = 2500


def draw(
    running: list[str], runtime: str, grafana_up: bool, seed: int | None, names: list[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """A seeded choice from the variants this lab can take (its services, its runtime)."""
    from labctl.faults.registry import FAULTS

    def fits(name: str, opts: dict[str, Any]) -> bool:
        if any(s not in running for s in FAULTS[name].needs):
            return False
        if opts.get("hop"):
            # Both ends of the hop must run (lab.yaml); Grafana may be in the stage yet not running here.
            hop = load_model().hop(str(opts["hop"]))
            if hop.source not in running or hop.target_service not in running:
                return False
            if "grafana" in (hop.source, hop.target_service) and not grafana_up:
                return False
        if runtime not in FAULTS[name].runtimes:
            return False
        return not (name == "latency" and runtime == "docker")

    pool = [v for v in variants(names) if fits(*v)]
    if not pool:
        raise LabError("no fault of the pool fits this lab", "start a later module, or widen --pool")
    return random.Random(seed).choice(pool)


# --- while blind ----------------------------------------------------------------------------------


def hidden(lab: LabState) -> dict[str, ActiveFault]:
    return lab.hidden_faults()


def conceal(results: list[CheckResult]) -> list[CheckResult]:
    """Check results with the answer taken out: candidates instead of the cause, the playbook index."""
    out = []
    for r in results:
        if r.ok and not r.warning:
            out.append(r)
            continue
        listed = "; ".join(CANDIDATES[r.layer]) if not r.ok else r.cause
        out.append(
            CheckResult(
                r.layer,
                r.name,
                r.ok,
                list(r.evidence),
                cause=f"one of: {listed}" if not r.ok else listed,
                hint="tell the candidates apart with the evidence and the playbooks; "
                "`labctl diagnose` records your answer",
                playbook="README",
                skipped=r.skipped,
                warning=r.warning,
            )
        )
    return out


# --- diagnosis and grading ------------------------------------------------------------------------


@dataclass
class Diagnosis:
    layer: int
    hop: str
    cause: str
    evidence: str
    fix: str
    at: float

    @classmethod
    def make(cls, layer: int, hop: str, cause: str, evidence: str, fix: str) -> Diagnosis:
        model = load_model()
        if layer not in model.layers:
            raise LabError(f"--layer {layer} does not exist", f"one of: {model.layers_hint()}")
        if hop not in hops():
            raise LabError(f"--hop {hop!r} is not a hop of the lab", f"one of: {', '.join(hops())}")
        if cause not in CAUSES:
            raise LabError(
                f"--cause {cause!r} is not a cause class",
                "one of: " + "; ".join(f"{k} ({v})" for k, v in CAUSES.items()),
            )
        if not evidence.strip() or not fix.strip():
            raise LabError(
                "a diagnosis needs the evidence you saw and the fix you propose",
                "e.g. --evidence 'check: connects, never answers' --fix 'restore the hop'",
            )
        return cls(layer, hop, cause, evidence.strip(), fix.strip(), time.time())


def record(lab: LabState, diagnosis: Diagnosis) -> None:
    lab.settings["diagnosis"] = asdict(diagnosis)
    lab.save()


def grade(diagnosis: dict[str, Any] | None, truth: Answer) -> dict[str, Any]:
    """Points per field (layer 1, hop 1, cause 2) and `correct` when the cause class is right."""
    given = diagnosis or {}
    fields = {
        "layer": (given.get("layer"), truth.layer),
        "hop": (given.get("hop"), truth.hop),
        "cause": (given.get("cause"), truth.cause),
    }
    rows: list[dict[str, Any]] = [
        {
            "field": f,
            "yours": mine,
            "answer": right,
            "points": POINTS[f] if mine == right else 0,
            "of": POINTS[f],
        }
        for f, (mine, right) in fields.items()
    ]
    score = sum(r["points"] for r in rows)
    return {
        "rows": rows,
        "score": score,
        "of": sum(POINTS.values()),
        "correct": bool(diagnosis)
        and given.get("cause") == truth.cause
        and given.get("layer") == truth.layer,
        "diagnosed": bool(diagnosis),
    }


def reveal(ctx: Any) -> list[dict[str, Any]]:
    """Grade the recorded diagnosis against every hidden fault, explain each, heal them (newest first)."""
    from labctl.faults import engine

    ctx.refresh()
    secret = hidden(ctx.lab)
    if not secret:
        raise LabError(
            "no hidden fault is active: nothing to reveal",
            "an instructor injects one with `labctl break --hidden --random`",
        )
    diagnosis = ctx.lab.settings.get("diagnosis")
    graded = []
    for name in sorted(secret, key=lambda n: secret[n].since, reverse=True):
        entry = secret[name]
        truth = answer(name, entry.options)
        result = grade(diagnosis, truth)
        seconds = engine.heal_fault(ctx, name)
        graded.append(
            {
                "fault": name,
                "options": entry.options,
                "since": entry.since,
                "explanation": truth.explanation,
                "pointers": list(truth.pointers),
                "evidence_at_break": entry.evidence,
                "diagnosis": diagnosis,
                "healed_in_s": seconds,
                **result,
            }
        )
    ctx.refresh()
    ctx.lab.settings.pop("diagnosis", None)
    history = list(ctx.lab.settings.get("graded", []))
    history.extend(
        {k: g[k] for k in ("fault", "options", "score", "of", "correct", "diagnosed")} | {"at": time.time()}
        for g in graded
    )
    ctx.lab.settings["graded"] = history[-20:]
    ctx.lab.save()
    return graded
