"""YAML reading that remembers line numbers, so every contract error can say `file:line`."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabError


class LineDict(dict[str, Any]):
    """A mapping that knows the line of itself and of each of its keys (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    line: int = 0


# libyaml's parser when PyYAML has it (≈20x faster on the contract, which every proxy start reads); the
# constructors below are Python either way, and its marks carry the same line numbers.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (int, float, bool)) or key is None:
            key = str(key) if key is not None else "null"
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise LabError(
            f"{where}: the contract is not valid YAML: {problem}",
            "fix the YAML syntax at that line (indentation, a missing ':' or an unclosed quote)",
        ) from None


def read_yaml_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabError(
            f"contract file {path} does not exist",
            "pass an existing contract, e.g. lab/contracts/claude-code.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(f"cannot read contract file {path}: {exc}", "check the path and permissions") from None
    return load_yaml(text, str(path))


class Where:
    """Builds `file:line: context:` prefixes for errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def at(self, node: Any, key: str | None = None) -> str:
        line = 0
        if isinstance(node, LineDict):
            line = node.key_lines.get(key, node.line) if key is not None else node.line
        elif isinstance(node, LineList):
            line = node.line
        return f"{self.source}:{line}" if line else self.source

    def fail(self, node: Any, key: str | None, message: str, hint: str) -> LabError:
        return LabError(f"{self.at(node, key)}: {message}", hint)

    def check_keys(self, node: Any, allowed: tuple[str, ...], what: str) -> None:
        if not isinstance(node, dict):
            return
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(allowed)}"
                raise self.fail(node, key, f"{what}: unknown key '{key}'", hint)

    def expect_map(self, node: Any, key: str | None, what: str, parent: Any = None) -> LineDict:
        if node is None:
            empty = LineDict()
            empty.key_lines = {}
            return empty
        if not isinstance(node, dict):
            raise self.fail(
                parent if parent is not None else node,
                key,
                f"{what} must be a mapping",
                "write it as `key: value` lines indented under it",
            )
        return node  # type: ignore[return-value]

    def expect_list(self, node: Any, key: str | None, what: str, parent: Any = None) -> list[Any]:
        if node is None:
            return []
        if not isinstance(node, list):
            raise self.fail(
                parent if parent is not None else node,
                key,
                f"{what} must be a list",
                "write it as [a, b] or as '- item' lines",
            )
        return node
