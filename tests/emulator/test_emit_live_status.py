"""`labctl emit` on a terminal shows a live line from its first second, not only a heartbeat every 10 s."""

from __future__ import annotations

import io
import time

from rich.console import Console

from labctl.emulator.command import _live_status, status_line
from labctl.emulator.runner import EmitOptions, Emulator
from labctl.emulator.settings import load_settings


def test_the_live_line_is_drawn_at_once_and_follows_the_emulator() -> None:
    emulator = Emulator(load_settings({}), EmitOptions(sessions=1, duration_s=20, seed=7))
    assert status_line(emulator, 0.2, 20) == "0s of 20s: 0 actions, 0 batches sent, 0 failed"
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=80)
    with _live_status(terminal, emulator, 20):
        emulator.actions_done = 3
        time.sleep(0.5)  # rich redraws ten times a second
        drawn = screen.getvalue()
    assert "of 20s: 3 actions, 0 batches sent, 0 failed" in drawn, drawn
