"""The admin listener's Host check (DNS rebinding guard), unit level."""

from __future__ import annotations

import pytest

from labctl.proxy.guard import host_allowed


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:4320",
        "127.0.0.1",
        "[::1]:4320",
        "::1",
        "localhost:4320",
        "LOCALHOST",
        "localhost.",
        "10.1.2.3:80",
        "proxy:4320",
        "lab.example.org",
    ],
)
def test_allowed(host: str) -> None:
    assert host_allowed(host, ("proxy", "lab.example.org"))


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:4320",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "proxy.evil.example",
        "",
        None,
        "attacker",
    ],
)
def test_refused(host: str | None) -> None:
    assert not host_allowed(host, ("proxy",))
