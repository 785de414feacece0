"""Layer 3: the check's marker followed into a store that keeps records one by one (the event store,
the trace store). The store must answer, the marker must have got past the Collector (else layer 2
names the cause), then the marker's records must arrive within WAIT_S."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from labctl.checks.context import CheckContext, wait_for
from labctl.checks.probe import http_get
from labctl.checks.result import CheckResult

WAIT_S = 10.0  # the Collector's batch (1 s) and its exporter, then the store's own flush (about 1 s)


@dataclass(frozen=True)
class Store:
    service: str  # the lab's service name, also the hop's far end
    title: str  # the name a student knows it by
    health: tuple[str, str]  # (port name, path) of its health endpoint
    row: str  # the check row's name
    record: str  # what the marker sends there: "event", "span"
    kind: str  # "event store", "trace store"
    exporter: str  # the Collector's exporter that feeds it
    playbook: str


def follow(
    cx: CheckContext,
    store: Store,
    want: int,
    count: Callable[[], int | None],
    query: str,
    found: Callable[[int], str],
) -> list[CheckResult]:
    """`count` asks the store once (None: no answer yet); `query` says how a student asks the same;
    `found` words the passing row's evidence for the count seen."""
    ready = http_get(cx.url(store.service, *store.health), timeout=2)
    if not ready.ok:
        return [
            _fail(store, [ready.describe()], f"{store.title} does not answer: {store.record}s are not stored")
        ]
    if not cx.reached.get("collector"):
        # Nothing to wait for: the record never got past layer 2, which names the cause.
        return [
            CheckResult(
                3,
                store.row,
                False,
                [
                    f"the marker's {store.record} did not reach the Collector (layer 2), so it cannot be stored"
                ],
                cause="nothing to store: fix the earlier layer first",
                playbook=store.playbook,
            )
        ]
    seen = {"n": 0}

    def stored() -> bool:
        n = count()
        if n is not None:
            seen["n"] = n
        return seen["n"] >= want

    if wait_for(stored, timeout=WAIT_S, interval=0.25):
        return [CheckResult(3, store.row, True, [found(seen["n"])])]
    return [
        _fail(
            store,
            [
                f"{seen['n']} of the marker's {want} {store.record}(s) in {store.title} after {WAIT_S:.0f}s ({query})"
            ],
            f"the Collector's {store.record}s do not reach the {store.kind} "
            f"(the collector → {store.service} hop)",
        )
    ]


def _fail(store: Store, evidence: list[str], cause: str) -> CheckResult:
    return CheckResult(
        3,
        store.row,
        False,
        evidence,
        cause=cause,
        hint=f"`labctl logs collector` shows the {store.exporter} exporter's errors; `labctl logs {store.service}`",
        playbook=store.playbook,
    )
