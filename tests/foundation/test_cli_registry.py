"""`labctl <command>` imports only the module that registers it (labctl.cli.COMMANDS): the table must name,
for every command and group, exactly the modules that register it, or a command would vanish."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest

import labctl.cli as cli


@pytest.fixture
def fresh_modules() -> Iterator[None]:
    """Each module is imported on its own into a new `app`; the process' modules are put back after."""
    saved = dict(sys.modules)
    try:
        yield
    finally:
        sys.modules.clear()
        sys.modules.update(saved)


def _registered_by(module: str) -> set[str]:
    for name in [n for n in sys.modules if n.startswith(("labctl.cli.", "labctl.emulator.command"))]:
        del sys.modules[name]
    main = importlib.import_module("labctl.cli.main")
    importlib.import_module(f"labctl.cli.{module}")
    commands = {c.name or c.callback.__name__ for c in main.app.registered_commands if c.callback}
    return commands | {g.name for g in main.app.registered_groups if g.name}


def test_every_module_registers_exactly_what_the_table_says(fresh_modules: None) -> None:
    table: dict[str, set[str]] = {}
    for command, modules in cli.COMMANDS.items():
        for module in modules:
            table.setdefault(module, set()).add(command)
    assert set(table) == set(cli._COMMAND_MODULES), "a command module is missing from COMMANDS"
    for module, commands in table.items():
        assert _registered_by(module) == commands, module


@pytest.mark.parametrize(
    ("argv", "modules"),
    [
        (["labctl", "check"], ["check_commands"]),
        (["labctl", "--state-dir", "/tmp/x", "break", "network"], ["fault_commands"]),
        (["labctl", "proxy", "stats"], ["proxy_commands", "proxy_inspect_commands"]),
        (["labctl", "no-such-command"], cli._COMMAND_MODULES),
        (["labctl", "check", "--help"], cli._COMMAND_MODULES),
        (["python", "-c", "check"], cli._COMMAND_MODULES),
    ],
)
def test_a_command_imports_only_its_module(argv: list[str], modules: list[str]) -> None:
    assert cli._wanted(argv) == modules
