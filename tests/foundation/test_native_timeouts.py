"""The native runtime reads its timeouts from the environment when it uses them, never at import."""

from __future__ import annotations

import pytest

from labctl.errors import LabError
from labctl.runtimes import native


def test_timeouts_are_read_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABCTL_HEALTH_TIMEOUT", raising=False)
    monkeypatch.delenv("LABCTL_STOP_TIMEOUT", raising=False)
    assert (native.health_timeout(), native.stop_timeout()) == (60.0, 8.0)
    monkeypatch.setenv("LABCTL_HEALTH_TIMEOUT", "90")
    monkeypatch.setenv("LABCTL_STOP_TIMEOUT", "2.5")
    assert (native.health_timeout(), native.stop_timeout()) == (90.0, 2.5)


@pytest.mark.parametrize("raw", ["soon", "0", "-5"])
def test_a_bad_timeout_names_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LABCTL_HEALTH_TIMEOUT", raw)
    with pytest.raises(LabError, match="LABCTL_HEALTH_TIMEOUT") as err:
        native.health_timeout()
    assert "e.g. LABCTL_HEALTH_TIMEOUT=60" in (err.value.hint or "")
