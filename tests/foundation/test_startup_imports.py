"""Start-up cost: the commands that send no HTTP request at start-up do not import `requests` (about
0.15 s of CPU, paid by every student command and by the hundreds of `labctl` runs of the test suite)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labctl.lazy import requests
from tests.conftest import REPO, labctl_env


def _imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=labctl_env(), check=True
    )
    return set(out.stdout.split())


@pytest.mark.integration  # a fresh interpreter: this one has imported everything
def test_lab_fault_and_grading_commands_load_without_requests() -> None:
    # `status`, `up`, `down` (their health probe uses the standard library), `break`, `heal`, `faults`,
    # `diagnose`, `reveal`, `class` (the fault modules import requests on first use).
    loaded = _imported_after(
        "import labctl.cli.lab_commands, labctl.cli.fault_commands, labctl.cli.blind_commands"
    )
    assert "labctl.faults.engine" in loaded and "labctl.runtimes.base" in loaded
    assert not {"requests", "urllib3"} & loaded


def test_the_stand_in_is_the_real_module_on_first_use() -> None:
    import requests as real

    assert requests.RequestException is real.RequestException
    assert requests.get is real.get
