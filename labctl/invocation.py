"""What one labctl invocation was asked for: the global options and whether it prints JSON.

One immutable object per invocation instead of module globals: the CLI's callback starts a fresh one
(`begin`), a command changes it only through `update` (e.g. `up --runtime`, `--json`), and everything
else reads it with `current()`. It lives in a context variable, so a test or a thread that runs several
invocations in one process never sees another's options. The environment (LABCTL_STATE_DIR, …) is read
where a value is needed (labctl/state.py), never at import.
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Invocation:
    state_dir: Path | None = None  # --state-dir
    instance: str | None = None  # --instance
    runtime: str | None = None  # --runtime, or a command's own --runtime
    json_output: bool = False  # stdout carries only a JSON document: messages go to stderr


_current: ContextVar[Invocation | None] = ContextVar("labctl_invocation", default=None)


def current() -> Invocation:
    """This invocation's options (all at their defaults before the CLI's callback ran)."""
    return _current.get() or Invocation()


def begin(**options: Any) -> Invocation:
    """A new invocation with these options (anything not given at its default)."""
    inv = Invocation(**options)
    _current.set(inv)
    return inv


def update(**changes: Any) -> Invocation:
    inv = dataclasses.replace(current(), **changes)
    _current.set(inv)
    return inv
