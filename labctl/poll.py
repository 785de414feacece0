"""The one polling loop: call a probe until it answers, or a timeout passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll(
    probe: Callable[[], Any],
    timeout: float,
    interval: float = 0.25,
    not_yet: tuple[type[BaseException], ...] = (),
) -> Any:
    """Call `probe` until it returns something truthy (returned) or `timeout` seconds pass (the last,
    falsy, value returned; None when it only raised). It is called at least once. Exceptions of the
    types in `not_yet` mean "not yet" (a service still starting); any other propagates."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except not_yet:
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
