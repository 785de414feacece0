"""Timed probes of scrape targets from where Prometheus sits, started early and run in the background.

A scrape that timed out says the same for a cut hop and for one slower than the timeout; a new
connection with a longer budget tells them apart (labctl/checks/probe.py first_byte). It also settles a
first scrape after a change that timed out on a connection opened before the change (HTTP keep-alive),
where a new connection is refused. The probes start as soon as check knows a target's state is stale,
beside the wait for Prometheus' own next scrape, so their budget is not added to that wait.

Natively Prometheus runs on this host: the probe runs here, through the same scrape URL. On Docker the
scrape URLs name compose services that only resolve inside the lab's networks: one throwaway container
of the proxy image (labctl's own code) runs the probes in Prometheus' network namespace, so it resolves
and connects exactly as Prometheus does.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import Future

from labctl.checks.context import CheckContext
from labctl.checks.probe import first_byte
from labctl.scrape_targets import Target

# Run inside the probe container: each URL's first_byte on its own thread, one JSON line out.
_IN_CONTAINER = """
import json, sys, threading
from labctl.checks.probe import first_byte
budget, urls, out = float(sys.argv[1]), sys.argv[2:], {}
print("probing", flush=True)  # the probes start now (the container and the imports took their time)
def run(u): out[u] = first_byte(u, budget)
threads = [threading.Thread(target=run, args=(u,)) for u in urls]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(out))
"""
START_SLACK_S = 20.0  # beyond the budget, for the probe container to start on a loaded machine


class Probes:
    """Background first-byte probes, one per scrape URL, each started at most once per check."""

    def __init__(self, cx: CheckContext) -> None:
        self.cx = cx
        self._futures: dict[str, Future[tuple[str, float]]] = {}
        self._began: dict[str, float] = {}  # time.monotonic() when each probe began to connect
        self._lock = threading.Lock()

    def start(self, urls: list[str], budget: float) -> None:
        with self._lock:
            new = [u for u in dict.fromkeys(urls) if u not in self._futures]
            futures: dict[str, Future[tuple[str, float]]] = {u: Future() for u in new}
            self._futures.update(futures)
        if not new:
            return
        if self.cx.lab.runtime == "docker":
            _thread(_in_container, self.cx, futures, budget, self._began)
        else:
            for url, future in futures.items():
                self._began[url] = time.monotonic()
                _thread(_here, url, future, budget)

    def result(self, url: str, budget: float) -> tuple[str, float]:
        """The probe's outcome for url (started now if it was not): ('answers' | 'silent' | …, seconds)."""
        self.start([url], budget)
        return self._futures[url].result()

    def done(self, url: str) -> tuple[str, float] | None:
        future = self._futures.get(url)
        return future.result() if future is not None and future.done() else None

    def silent_for(self, url: str) -> float:
        """Seconds a probe of url has waited so far without any outcome (0 when none runs)."""
        began = self._began.get(url)
        if began is None or self.done(url) is not None:
            return 0.0
        return time.monotonic() - began


def _thread(fn: object, *args: object) -> None:
    threading.Thread(target=fn, args=args, daemon=True).start()  # type: ignore[arg-type]


def _here(url: str, future: Future[tuple[str, float]], budget: float) -> None:
    try:
        future.set_result(first_byte(url, budget))
    except Exception as exc:  # an unexpected error is an outcome, never a hang
        future.set_result((f"probe failed: {exc}", 0.0))


def _in_container(
    cx: CheckContext, futures: dict[str, Future[tuple[str, float]]], budget: float, began: dict[str, float]
) -> None:
    from labctl.runtimes.docker_images import clean_call

    project = f"labctl-{cx.lab.instance}".lower()
    image = str(cx.lab.settings.get("proxy_image") or "")
    said: dict[str, tuple[str, float]] = {}
    why = "no proxy image recorded for this lab"
    if image:
        argv = [
            *clean_call(["docker"]), "run", "--rm", "--network", f"container:{project}-prometheus-1",
            # The project's labels: `labctl down` removes a probe that is still running.
            "--label", f"com.docker.compose.project={project}",
            "--label", "com.docker.compose.service=check-probe",
            "--label", "com.docker.compose.oneoff=False",
            image, "python", "-c", _IN_CONTAINER, f"{budget:g}", *futures,
        ]  # fmt: skip
        try:
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
                timer = threading.Timer(budget + START_SLACK_S, proc.kill)
                timer.start()
                try:
                    assert proc.stdout is not None and proc.stderr is not None
                    if proc.stdout.readline().strip() == "probing":
                        began.update(dict.fromkeys(futures, time.monotonic()))
                    lines = proc.stdout.read().strip().splitlines()
                    error = proc.stderr.read()
                finally:
                    timer.cancel()
            if proc.returncode == 0 and lines:
                said = {u: (str(v[0]), float(v[1])) for u, v in json.loads(lines[-1]).items()}
            else:
                why = (error.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        except (OSError, ValueError) as exc:
            why = str(exc)
    for url, future in futures.items():
        future.set_result(said.get(url, (f"probe failed: {why[:160]}", 0.0)))


def for_check(cx: CheckContext) -> Probes:
    """This check's timed probes of scrape targets (one per URL, shared by every look)."""
    probes = cx.notes.get("scrape_probes")
    if not isinstance(probes, Probes):
        probes = cx.notes["scrape_probes"] = Probes(cx)
    return probes


def budget(cx: CheckContext, targets: list[Target]) -> float:
    """Longer than the scrape timeout by enough to tell a slow answer from none."""
    return max((t.timeout_s(cx.scrape_interval) for t in targets), default=cx.scrape_interval) + 3.0


def hangs(outcome: tuple[str, float] | None) -> bool:
    """A timed probe that got nothing back: no connection (timeout) or no byte (silent) in its budget."""
    return outcome is not None and outcome[0] in ("silent", "timeout")


def explain_timeout(cx: CheckContext, probes: Probes, target: Target, refused: str) -> tuple[str, str, bool]:
    """Why a scrape of target timed out, from the timed probe of a new connection: (how, the evidence
    line, whether the hop is slow rather than cut). `refused` is check's words for a refused scrape."""
    timeout = target.timeout_s(cx.scrape_interval)
    limit = budget(cx, [target])
    cx.progress(f"timing a scrape of {target.scrape_url} (up to {limit:g}s): slow or cut?")
    seen, seconds = probes.result(target.scrape_url, limit)
    line = f"timed probe: GET {target.scrape_url} → " + (
        f"first byte after {seconds:.1f} s"
        if seen == "answers"
        else f"no answer within {limit:g} s"
        if hangs((seen, seconds))
        else f"{seen} after {seconds:.1f} s"
    )
    if seen == "answers":
        slow = f"a scrape answers after {seconds:.1f} s, longer than the {timeout:g} s scrape timeout"
        return f"the hop is slow, not cut: {slow}", line, True
    if hangs((seen, seconds)):
        return (
            f"the scrape hangs, nothing comes back within {limit:g} s: the hop is partitioned (cut, not slow)",
            line,
            False,
        )
    if seen == "refused":
        # The timed-out scrape went out on a connection opened before the change (keep-alive); a new one
        # is refused, as every later scrape will be.
        return refused, line, False
    if seen == "dns":
        return "the scrape timed out, and the host name does not resolve where Prometheus runs", line, False
    return f"the scrape timed out, and a timed probe could not tell why ({seen})", line, False
