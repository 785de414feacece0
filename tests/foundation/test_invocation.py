"""One invocation's options live in one object: a new invocation starts from its own options (nothing
left over from the one before, in the same process), and importing the CLI registers no command."""

from __future__ import annotations

import contextvars
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl import invocation, state, ui


@pytest.fixture
def fresh_invocation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("LABCTL_STATE_DIR", "LABCTL_INSTANCE", "LABCTL_RUNTIME"):
        monkeypatch.delenv(var, raising=False)
    try:
        yield
    finally:
        state.configure()


def test_a_new_invocation_forgets_the_last_ones_options(fresh_invocation: None, tmp_path: Path) -> None:
    state.configure(state_dir=tmp_path, instance="class-b", runtime="native")
    ui.json_mode(True)
    assert state.state_dir() == tmp_path.resolve() and state.requested_runtime() == "native"
    assert ui._out() is ui.err_console, "--json: messages go to stderr"
    state.configure()
    assert state.instance_name() == "default" and state.requested_runtime() == "auto"
    assert ui._out() is ui.console, "the next invocation prints to stdout again"


def test_a_commands_own_runtime_changes_only_its_invocation(fresh_invocation: None) -> None:
    state.configure(instance="class-c")
    seen: dict[str, str] = {}

    def elsewhere() -> None:  # another invocation in the same process (a thread, a test runner)
        state.configure(runtime="docker")
        seen["runtime"], seen["instance"] = state.requested_runtime(), state.instance_name()

    contextvars.copy_context().run(elsewhere)
    assert seen == {"runtime": "docker", "instance": "default"}
    assert state.requested_runtime() == "auto" and state.instance_name() == "class-c"
    state.override_runtime("native")  # `labctl up --runtime native`
    assert invocation.current().runtime == "native" and invocation.current().instance == "class-c"


def test_importing_the_cli_registers_nothing_and_application_registers_what_argv_needs() -> None:
    saved = dict(sys.modules)
    try:
        for name in [n for n in sys.modules if n.startswith(("labctl.cli", "labctl.emulator.command"))]:
            del sys.modules[name]
        cli = importlib.import_module("labctl.cli")
        assert cli.app.registered_commands == [] and cli.app.registered_groups == []
        cli.application(["labctl", "check"])
        assert [c.callback.__name__ for c in cli.app.registered_commands if c.callback] == ["check"]
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
