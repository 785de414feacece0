"""Check a `labctl …` invocation against the real CLI: walk the click tree Typer builds from `app`.

Recent Typer releases carry their own copy of click, so the tree is read by duck typing (a group has
`commands`, a parameter has `param_type_name`) rather than with isinstance checks against click.
"""

from __future__ import annotations

import re
from typing import Any

import typer.main

# Tokens a doc uses to stand for a value the reader chooses (<fault>, NAME, ...): not checked as values.
_PLACEHOLDER_RE = re.compile(r"^(<.*>|\[.*\]|[A-Z][A-Z0-9_]*|\.\.\.|…|[^|\s]+(\|[^|\s]+)+)$")


def root_command() -> Any:
    import labctl.cli

    return typer.main.get_command(labctl.cli.application())  # every command module registered


class _Help:
    """Stands for the --help option every command has."""

    param_type_name = "option"
    is_flag = True
    count = False


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _is_group(cmd: Any) -> bool:
    return isinstance(getattr(cmd, "commands", None), dict)


def _find_option(cmd: Any, name: str) -> Any:
    if name in ("--help", "-h") and name in getattr(cmd.context_settings, "get", lambda *_: None)(
        "help_option_names", ["--help"]
    ):
        return _Help()
    for param in cmd.params:
        if _is_option(param) and (name in param.opts or name in param.secondary_opts):
            return param
    return None


def _takes_value(param: Any) -> bool:
    return _is_option(param) and not (param.is_flag or param.count)


def value_kind(param: Any) -> tuple[str, list[str]]:
    """("int" | "float" | "choice" | "text", choices) for a parameter, from Typer's annotation or click's type."""
    import enum
    import types
    import typing

    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is not None:
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            non_none = [a for a in args if a is not type(None)]
            annotation = non_none[0] if len(non_none) == 1 else annotation
        if typing.get_origin(annotation) is typing.Literal:
            return "choice", [str(a) for a in typing.get_args(annotation)]
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return "choice", [str(m.value) for m in annotation]
        if annotation is bool:
            return "text", []
        if annotation is int:
            return "int", []
        if annotation is float:
            return "float", []
        return "text", []
    ptype = getattr(param, "type", None)  # plain click
    if getattr(ptype, "choices", None) is not None:
        return "choice", [str(c) for c in ptype.choices]
    return {"integer": "int", "float": "float"}.get(getattr(ptype, "name", ""), "text"), []


def _check_value(param: Any, value: str, where: str) -> list[str]:
    if _PLACEHOLDER_RE.match(value):
        return []
    kind, allowed = value_kind(param)
    if kind == "choice" and value not in allowed:
        return [f"{where}: {value!r} is not one of {allowed}"]
    if kind == "int" and not re.fullmatch(r"-?\d+", value):
        return [f"{where}: {value!r} is not a whole number"]
    if kind == "float":
        try:
            float(value)
        except ValueError:
            return [f"{where}: {value!r} is not a number"]
    return []


def problems(argv: list[str], root: Any = None) -> list[str]:
    """What is wrong with `labctl <argv>` as the real CLI sees it; empty when it would be accepted."""
    cmd = root or root_command()
    path = ["labctl"]
    found: list[str] = []
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        where = " ".join(path)
        if tok == "--" and not _is_group(cmd):
            # End of options, as click reads it: what follows is positional (e.g. `labctl claude -- ARGS`).
            positionals += argv[i + 1 :]
            break
        if tok.startswith("-") and tok not in ("-",) and not re.fullmatch(r"-\d+(\.\d+)?", tok):
            name, eq, inline = tok.partition("=")
            param = _find_option(cmd, name)
            if param is None and _passes_extra_args(cmd):
                # The command hands unknown options to its own parser (e.g. a fault's options): keep them
                # with the positionals for the command-specific check below.
                positionals.append(tok)
                i += 1
                continue
            if param is None:
                known = sorted(o for p in cmd.params if _is_option(p) for o in p.opts)
                found.append(f"`{where}` has no option {name} (it has: {', '.join(known) or 'none'})")
                i += 1
                continue
            if _takes_value(param):
                if eq:
                    found += _check_value(param, inline, f"{where} {name}")
                elif i + 1 < len(argv):
                    found += _check_value(param, argv[i + 1], f"{where} {name}")
                    i += 1
                else:
                    found.append(f"`{where} {name}` needs a value")
            i += 1
            continue
        if _is_group(cmd) and not positionals:
            if _PLACEHOLDER_RE.match(tok):
                return found  # "labctl proxy ..." or "labctl matrix list|run": stands for several commands
            if "/" in tok and all(part in cmd.commands for part in tok.split("/")):
                return found  # "labctl proxy sessions/export": two real commands written as one
            sub = cmd.commands.get(tok)
            if sub is None:
                found.append(f"`{where}` has no command {tok!r} (it has: {', '.join(sorted(cmd.commands))})")
                return found
            cmd = sub
            path.append(tok)
            i += 1
            continue
        positionals.append(tok)
        i += 1
    if not _is_group(cmd) and _passes_extra_args(cmd):
        found += _extra_args_problems(path, positionals)
    elif not _is_group(cmd):
        if path[1:] == ["heal"] and positionals and not _PLACEHOLDER_RE.match(positionals[0]):
            from labctl.faults.registry import FAULTS

            if positionals[0] not in FAULTS:
                found.append(f"`labctl heal`: no fault {positionals[0]!r} (faults: {', '.join(FAULTS)})")
        args = [p for p in cmd.params if _is_argument(p)]
        unlimited = any(p.nargs < 0 for p in args)
        capacity = sum(max(p.nargs, 0) for p in args)
        where = " ".join(path)
        if not unlimited and len(positionals) > capacity:
            found.append(f"`{where}` takes {capacity} argument(s) but the doc gives {positionals}")
        # Check each positional against its argument's type where the mapping is unambiguous.
        if not unlimited:
            for param, value in zip(args, positionals, strict=False):
                found += _check_value(param, value, f"{where} <{param.name}>")
    elif positionals:
        found.append(f"`{' '.join(path)}` is a group; {positionals[0]!r} is not one of its commands")
    return found


def _passes_extra_args(cmd: Any) -> bool:
    settings = getattr(cmd, "context_settings", None) or {}
    return bool(settings.get("allow_extra_args"))


def _extra_args_problems(path: list[str], args: list[str]) -> list[str]:
    """Commands that parse their own options: `labctl break <fault> [--option value]` (the fault table)."""
    where = " ".join(path)
    if path[-1] != "break":
        return [f"`{where}` takes extra arguments that this checker does not know how to verify"]
    from labctl.faults.registry import FAULTS

    if not args or _PLACEHOLDER_RE.match(args[0]):
        return []
    fault = FAULTS.get(args[0])
    if fault is None:
        return [f"`{where}`: no fault {args[0]!r} (faults: {', '.join(FAULTS)})"]
    options = {o.name: o for o in fault.options}
    positional = [o for o in fault.options if getattr(o, "positional", False)]
    found = []
    rest = args[1:]
    i = 0
    while i < len(rest):
        tok = rest[i]
        if not tok.startswith("--"):
            if positional and not _PLACEHOLDER_RE.match(tok):
                option = positional.pop(0)
                if option.choices and tok not in option.choices:
                    found.append(f"`{where} {fault.name}`: {tok!r} is not one of {list(option.choices)}")
            elif not _PLACEHOLDER_RE.match(tok):
                found.append(f"`{where} {fault.name}`: unexpected argument {tok!r}")
            i += 1
            continue
        name, eq, value = tok[2:].partition("=")
        option = options.get(name)
        if option is None:
            found.append(
                f"`{where} {fault.name}` has no option --{name} (it has: "
                f"{', '.join('--' + o for o in options) or 'none'})"
            )
            i += 1
            continue
        if not eq:
            value = rest[i + 1] if i + 1 < len(rest) else ""
            i += 1
        if option.choices and value not in option.choices and not _PLACEHOLDER_RE.match(value):
            found.append(f"`{where} {fault.name} --{name}`: {value!r} is not one of {list(option.choices)}")
        i += 1
    return found
