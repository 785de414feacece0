"""Module 1's real Claude Code step shows what the pinned client prints against the lab's model stub.

The `claude-code` part of the docs scenario (tests/docs/generate_outputs.py) on a module-1 lab of its
own. It needs the pinned client: tests/run-all.sh installs it, and under CI it must be there; elsewhere
the test says it is skipped, like tests/claude's real-client tests.
"""

from __future__ import annotations

import os
import subprocess
import sys

import generate_outputs
import pytest


@pytest.mark.integration
@pytest.mark.slow
def test_output_of_the_real_claude_code_step_matches_a_real_run():
    installed = subprocess.run(
        [sys.executable, "-m", "labctl", "install", "claude-code"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=generate_outputs.REPO,
    )
    if installed.returncode != 0:
        message = f"the pinned Claude Code could not be installed:\n{installed.stdout}\n{installed.stderr}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    generate_outputs.assert_part_matches("claude-code")
