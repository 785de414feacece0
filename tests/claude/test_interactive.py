"""`labctl claude --interactive`: the real client's terminal UI starts straight into the prompt — no
onboarding, theme, login, API-key or folder-trust question — and works against the model stub."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labctl.state import LabState
from tests.conftest import labctl_env, run_labctl

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
_ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")
# What the client (2.1.332) shows a new user when its settings are not pre-answered: the onboarding (which
# first checks that api.anthropic.com answers: offline, it stops there) and its questions.
QUESTIONS = (
    "Welcome to Claude Code",
    "Unable to connect to Anthropic services",
    "Choose the text style",
    "Select login method",
    "Detected a custom API key",
    "Do you want to use this API key",
    "Yes, I trust this folder",
    "Quick safety check",
)


def shown(term: Terminal) -> list[str]:
    """The questions on screen (compared without spaces: cursor moves may eat them)."""
    screen = re.sub(r"\s", "", term.text)
    return [q for q in QUESTIONS if re.sub(r"\s", "", q) in screen]


class Terminal:
    """A pseudo-terminal running one command; reads everything it prints."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the command
            os.execvpe(cmd[0], cmd, {**env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"})
        self.raw = b""

    def read_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.raw += os.read(self.fd, 65536)
                except OSError:
                    return

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())
        self.read_for(0.5)
        os.write(self.fd, b"\r")

    @property
    def text(self) -> str:
        return _ANSI.sub(b"", self.raw).decode(errors="replace")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def test_the_terminal_ui_asks_nothing_and_works(native_lab: Callable[[str], LabState]) -> None:
    if run_labctl("install", "claude-code", check=False, timeout=900).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the pinned Claude Code could not be installed", pytrace=False)
        pytest.skip("the pinned Claude Code is not installed (`labctl install claude-code`)")
    lab = native_lab("module-1")
    written = lab.dir / "claude" / "work" / "hello-write" / "hello.py"
    term = Terminal(
        [
            sys.executable,
            "-m",
            "labctl",
            "--state-dir",
            str(lab.dir),
            "claude",
            "--scenario",
            "hello-write",
            "--interactive",
        ],
        {**labctl_env(), "PYTHONPATH": str(REPO)},
    )
    try:
        term.read_for(8)  # start-up: the client draws its prompt
        asked = shown(term)
        assert not asked, f"the client asked: {asked}\n{term.text[-2000:]}"
        term.type("Create hello.py that prints a greeting.")
        deadline = time.monotonic() + 60
        while not written.exists() and time.monotonic() < deadline:
            term.read_for(1)
        assert written.read_text() == "print('hello from the lab')\n", term.text[-2000:]
        term.read_for(3)
        # The scenario's answer is on screen (cursor moves may eat the spaces between the words).
        assert "Createdhello.py" in re.sub(r"\s", "", term.text), term.text[-2000:]
        term.type("/exit")
        term.read_for(3)
    finally:
        term.close()

    # The same client with a fresh HOME and nothing pre-answered does ask: the check above can fail.
    from labctl.emulator.labenv import client_env
    from labctl.install.claudecode import resolve

    home = lab.dir / "fresh-home"
    home.mkdir()
    env = {
        **labctl_env(),
        **{k: v for k, v in client_env(lab).items() if v},
        "HOME": str(home),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    env.pop("CLAUDE_CONFIG_DIR", None)
    fresh = Terminal([str(resolve())], env)
    try:
        fresh.read_for(10)
        assert shown(fresh), f"no first-run question seen:\n{fresh.text[-2000:]}"
    finally:
        fresh.close()
