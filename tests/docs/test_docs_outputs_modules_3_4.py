"""The module guides' output sections of modules 3 and 4 are what the real tool prints there.

One part of the docs scenario (tests/docs/generate_outputs.py, part `modules-3-4`) on a lab of its own, so
that it runs beside the other part's file under xdist.
"""

from __future__ import annotations

import generate_outputs
import pytest


@pytest.mark.integration
@pytest.mark.slow
def test_outputs_of_modules_3_and_4_match_a_real_run():
    from labctl.errors import LabError
    from labctl.install import resolve_binary

    for name in ("otelcol-lab", "prometheus", "alertmanager", "victoria-logs", "jaeger"):
        try:
            resolve_binary(name)
        except LabError as exc:  # names `labctl install <component>`
            pytest.fail(f"{name} is needed to re-run the exercises: {exc}")
    diffs = generate_outputs.differences("modules-3-4")
    assert not diffs, (
        "the docs show output the tool no longer prints; run "
        "`python tests/docs/generate_outputs.py --part modules-3-4`\n" + "\n\n".join(diffs)
    )
