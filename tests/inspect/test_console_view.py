"""The readable console view: a line per payload, the violations under it, and a cap under load."""

from __future__ import annotations

import io

from rich.console import Console

from labctl.contract import default_contract_path, load_contract
from labctl.contract.samples import Point, metrics_request, sample_metrics, session_attrs
from labctl.proxy.inspect.console import ConsoleView


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _view(mode: str, cap: int = 20, clock: Clock | None = None) -> tuple[ConsoleView, io.StringIO]:
    buf = io.StringIO()
    return ConsoleView(
        mode, Console(file=buf, width=300, color_system=None), max_payloads_per_s=cap, clock=clock or Clock()
    ), buf


def _summary(ev, i: int = 1) -> dict:
    return {
        "time": "2026-01-01T00:00:00.000Z",
        "signal": "metrics",
        "protocol": "grpc",
        "items": ev.total,
        "rejected": ev.rejected,
        "verdict": "violation" if ev.rejected else "ok",
        "peer": "ipv4:127.0.0.1:5",
    }


def test_summary_mode_shows_payloads_and_only_violating_points() -> None:
    cc = load_contract(default_contract_path())
    view, buf = _view("summary")
    ok = cc.evaluate("metrics", sample_metrics())
    view.show(_summary(ok), ok.records)
    bad = cc.evaluate(
        "metrics",
        metrics_request(
            [
                Point("claude_code.token.usage", 3, {**session_attrs(), "model": "m", "type": "input"}),
                Point("claude_code.token.usage", 3, {**session_attrs(), "model": "m", "type": "tokens"}),
            ]
        ),
    )
    view.show(_summary(bad), bad.records)
    out = buf.getvalue().splitlines()
    assert "metrics" in out[0] and "12 items" in out[0] and out[0].rstrip().endswith("ipv4:127.0.0.1:5")
    assert "2 items" in out[1] and "violation" in out[1] and "1 violating" in out[1]
    assert "claude_code.token.usage = 3" in out[2] and "type=tokens" in out[2]
    assert "✗ attribute_value" in out[3] and "attributes[type]" in out[3]
    assert len(out) == 4  # the conforming point of the second payload is not listed in summary mode


def test_points_mode_and_the_rate_cap() -> None:
    cc = load_contract(default_contract_path())
    ev = cc.evaluate("metrics", sample_metrics())
    clock = Clock()
    view, buf = _view("points", cap=3, clock=clock)
    for _ in range(10):
        view.show(_summary(ev), ev.records)
    text = buf.getvalue()
    assert text.count("12 items") == 3  # the cap: 3 payloads per second
    assert "claude_code.cost.usage = 0.0123" in text
    clock.now += 1  # the next second begins: the skipped count is reported
    view.show(_summary(ev), ev.records)
    assert "7 more payloads in the last second not shown" in buf.getvalue()
