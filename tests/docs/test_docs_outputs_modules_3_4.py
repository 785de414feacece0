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
    generate_outputs.assert_part_matches(
        "modules-3-4", ("otelcol-lab", "prometheus", "alertmanager", "victoria-logs", "jaeger")
    )
