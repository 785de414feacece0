"""How hard the property tests try. The fast lane (a maintainer's `pytest -m "not integration"`) runs a
tenth of each test's examples; `bash tests/run-all.sh` passes `--hypothesis-profile thorough` and runs
them all. The profiles are registered in tests/conftest.py, which the hypothesis plugin loads first."""

from __future__ import annotations

from hypothesis import settings


def examples(thorough: int) -> int:
    """`thorough` examples under the thorough profile, a tenth of them (at least 10) otherwise."""
    return max(10, thorough * settings.default.max_examples // 100)
