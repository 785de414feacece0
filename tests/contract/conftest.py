from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def labctl_run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real CLI (`python -m labctl ...`) in a subprocess."""

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        proc = subprocess.run(
            [sys.executable, "-m", "labctl", *args],
            check=False,
            input=stdin,
            capture_output=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
        )

    return run
