"""Shared fixtures: a real lab started natively (free ports, temp state dir) and torn down always.

    def test_something(native_lab):
        lab = native_lab("module-3")          # a started lab; LabState with the chosen ports
        lab.url("prometheus", "web")          # http://127.0.0.1:<port>

The lab is started and stopped with the real `labctl` CLI in a subprocess, exactly as a student runs it
(so the services are detached processes that outlive the command). Teardown runs `labctl down`, then
kills anything a failed run may have left behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from file_order import longest_files_first, read_table
from hypothesis import settings

from labctl.runtimes import process
from labctl.state import PORT_POOL_ENV, LabState

REPO = Path(__file__).resolve().parent.parent

# Property tests scale their example counts with the profile (tests/fuzz_budget.py): `fast` is the
# default for a maintainer's run, run-all.sh passes `--hypothesis-profile thorough`.
settings.register_profile("thorough", max_examples=100, deadline=None)
settings.register_profile("fast", max_examples=10, deadline=None)
settings.load_profile("fast")

# Every port a test or its labctl picks comes from one pool below the kernel's ephemeral range, shared
# by all workers and all suites on the machine (labctl/state.py says why).
os.environ.setdefault(PORT_POOL_ENV, f"{tempfile.gettempdir()}/labctl-test-ports:10000-32000")

# Variables that would point a test's labctl at the developer's own lab.
_ISOLATE = ("LABCTL_STATE_DIR", "LABCTL_INSTANCE", "LABCTL_RUNTIME")


def labctl_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATE}
    env.setdefault("LABCTL_HEALTH_TIMEOUT", "90")  # 2 shared cores: a slow start is not a failure
    env["COLUMNS"] = "200"  # keep rich from wrapping messages the tests read
    env.update(extra)
    return env


def run_labctl(
    *args: str,
    state_dir: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (`python -m labctl ...`) and return its result; on check, fail with its output."""
    cmd = [sys.executable, "-m", "labctl"]
    if state_dir is not None:
        cmd += ["--state-dir", str(state_dir)]
    cmd += list(args)
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env or labctl_env(), timeout=timeout, cwd=REPO, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"`labctl {' '.join(args)}` exited {result.returncode}\n--- stdout\n{result.stdout}\n"
            f"--- stderr\n{result.stderr}",
            pytrace=False,
        )
    return result


def kill_leftovers(state_dir: Path) -> list[str]:
    """Last line of defence: stop every process a pid file in the state dir still names."""
    left = []
    records = []
    # services/<name>/ hold the lab's processes; faults/<name>/ the fault relays (labctl.faults.relay).
    pid_files = [*(state_dir / "services").glob("*/*.pid"), *(state_dir / "faults").glob("*/*.pid")]
    for pid_file in pid_files:
        rec = process.read_record(pid_file)
        if rec is not None and rec.alive():
            left.append(pid_file.stem)
            records.append(rec)
    for rec in records:
        process.send_signal(rec, signal.SIGKILL)
    return left


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 1.0) -> Any:
    """Poll probe() until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}", pytrace=False)


@contextlib.contextmanager
def started_lab(stage: str, state_dir: Path, *extra_args: str) -> Iterator[LabState]:
    """`labctl up <stage> --runtime native --free-ports`; always `labctl down` (and a kill) afterwards."""
    try:
        run_labctl("--runtime", "native", "up", stage, "--free-ports", *extra_args, state_dir=state_dir)
        yield LabState.load(state_dir)
    finally:
        if LabState.exists(state_dir) or (state_dir / "services").exists():
            run_labctl("down", state_dir=state_dir, check=False)
        kill_leftovers(state_dir)


@pytest.fixture
def native_lab(tmp_path: Path) -> Iterator[Callable[..., LabState]]:
    """Factory: native_lab("module-3") starts that stage; calling again in the same test moves the same
    lab to another stage (additive up). Everything is stopped when the test ends, pass or fail."""
    state_dir = tmp_path / "lab"
    stack = contextlib.ExitStack()

    def start(stage: str) -> LabState:
        if not LabState.exists(state_dir):
            return stack.enter_context(started_lab(stage, state_dir))
        run_labctl("--runtime", "native", "up", stage, state_dir=state_dir)
        return LabState.load(state_dir)

    with stack:
        yield start


@pytest.fixture
def lab_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A temp state dir for tests that drive `labctl` themselves; leftovers are killed at the end."""
    state_dir = tmp_path / "lab"
    try:
        yield state_dir
    finally:
        if LabState.exists(state_dir):
            run_labctl("down", state_dir=state_dir, check=False)
        kill_leftovers(state_dir)


@pytest.fixture
def labctl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """run_labctl as a fixture: labctl("status", "--json", state_dir=d, check=False)."""
    return run_labctl


# The fast lane (`pytest -m "not integration"`) must run without any binary or browser: a test that
# starts a process (itself or through a fixture, of any scope) and is not marked `integration` fails
# here, naming the fix, instead of passing on a machine that happens to have the binaries. Threads and
# in-process servers are fine.
_PROCESS_STARTERS = (
    (subprocess.Popen, "_execute_child"),
    (os, "fork"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (multiprocessing.process.BaseProcess, "start"),
)


@contextlib.contextmanager
def _processes_refused(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("integration") is not None:
        yield
        return

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"{item.nodeid} starts a process: mark it @pytest.mark.integration")

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in _PROCESS_STARTERS:
            if hasattr(owner, name):
                patch.setattr(owner, name, refuse)
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _processes_refused(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _processes_refused(item):
        return (yield)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first (tests/file_order.py): the full run's two workers then finish together."""
    items[:] = longest_files_first(items, read_table())
