"""Modules imported on first use, for the commands that may never need them.

`requests` costs about 0.15 s of CPU to import here (it pulls urllib3's whole async stack): the fault
modules are loaded by every `break`, `heal`, `faults`, `diagnose` and `reveal`, and most of those runs
(listing, grading, healing nothing) send no HTTP request. `from labctl.lazy import requests` gives a
stand-in whose first attribute access imports the real module; mypy sees the real one.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _OnFirstUse:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module: ModuleType = importlib.import_module(self._name)  # the import lock makes this thread-safe
        return getattr(module, attr)


if TYPE_CHECKING:
    import requests as requests
else:
    requests = _OnFirstUse("requests")
