"""`labctl <command>` imports only the module that defines it (labctl.cli.COMMANDS): the table must name,
for every command and group, exactly the modules that define it, or a command would vanish. Importing
a command module registers nothing: `application` mounts the modules' commands, from the table."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest

import labctl.cli as cli


@pytest.fixture
def fresh_modules() -> Iterator[None]:
    """labctl.cli imported anew, with a new `app`; the process' modules are put back after."""
    saved = dict(sys.modules)
    for name in [n for n in sys.modules if n == "labctl.cli" or n.startswith("labctl.cli.")]:
        del sys.modules[name]
    try:
        yield
    finally:
        sys.modules.clear()
        sys.modules.update(saved)


def _names(typer_app) -> set[str]:
    commands = {c.name or c.callback.__name__ for c in typer_app.registered_commands if c.callback}
    return commands | {g.name for g in typer_app.registered_groups if g.name}


def test_every_module_defines_exactly_what_the_table_says() -> None:
    table: dict[str, set[str]] = {}
    for command, modules in cli.COMMANDS.items():
        for module in modules:
            table.setdefault(module, set()).add(command)
    assert set(table) == set(cli._COMMAND_MODULES), "a command module is missing from COMMANDS"
    for module, commands in table.items():
        assert _names(importlib.import_module(f"labctl.cli.{module}").cli) == commands, module


def test_importing_a_command_module_registers_nothing_until_the_table_mounts_it(fresh_modules: None) -> None:
    main = importlib.import_module("labctl.cli.main")
    for module in importlib.import_module("labctl.cli")._COMMAND_MODULES:
        importlib.import_module(f"labctl.cli.{module}")
    assert _names(main.app) == set()
    fresh = importlib.import_module("labctl.cli")
    app = fresh.application(["labctl", "proxy", "stats"])
    assert _names(app) == {"proxy"}
    proxy = next(g.typer_instance for g in app.registered_groups if g.name == "proxy")
    both = {c.name for c in proxy.registered_commands}
    assert {"serve", "sessions", "export"} <= both  # proxy_commands' and proxy_inspect_commands' in one
    fresh.application()
    fresh.application()  # mounted once, however often it is asked
    assert sorted(_names(app)) == sorted(fresh.COMMANDS)
    assert len({c.name for c in proxy.registered_commands}) == len(proxy.registered_commands)


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
