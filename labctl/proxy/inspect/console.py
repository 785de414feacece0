"""A readable console view of incoming data: one line per payload, one indented line per point or
violation (`inspect: {console: summary | points | off}` in the proxy config). Goes to stderr, which the
lab captures into the proxy's service log."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape


class ConsoleView:
    def __init__(
        self,
        mode: str = "summary",
        console: Console | None = None,
        max_lines: int = 20,
        max_payloads_per_s: int = 20,
        clock: Any = time.monotonic,
    ) -> None:
        self.mode = mode
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.max_lines = max_lines
        self.max_payloads_per_s = max_payloads_per_s
        self.clock = clock
        self._second = 0
        self._shown = 0
        self._skipped = 0

    def show(self, summary: dict[str, Any], records: list[dict[str, Any]]) -> None:
        if self.mode == "off":
            return
        # Under load a line per payload would cost more than the proxy's work: show the first few per
        # second and say how many were left out (the page and the JSONL log have all of them).
        second = int(self.clock())
        if second != self._second:
            if self._skipped:
                self.console.print(
                    f"[dim]… {self._skipped} more payloads in the last second not shown "
                    "(see the inspector page or the JSONL log)[/]"
                )
            self._second, self._shown, self._skipped = second, 0, 0
        if self._shown >= self.max_payloads_per_s:
            self._skipped += 1
            return
        self._shown += 1
        ok = summary["verdict"] == "ok"
        colour = "green" if ok else "red"
        self.console.print(
            f"[dim]{summary['time']}[/] [bold]{summary['signal']:<7}[/] {escape(summary['protocol']):<13} "
            f"{summary['items']:>5} items  [{colour}]{summary['verdict']}[/]"
            + (f" [red]{summary['rejected']} violating[/]" if summary["rejected"] else "")
            + f"  [dim]{escape(str(summary.get('peer', '')))}[/]"
        )
        shown = 0
        for rec in records:
            if shown >= self.max_lines:
                self.console.print(f"    [dim]… {len(records) - shown} more (see the inspector page)[/]")
                break
            if self.mode == "points" or rec["verdict"] != "ok":
                attrs = ", ".join(f"{k}={v}" for k, v in list((rec.get("attributes") or {}).items())[:6])
                value = "" if rec.get("value") is None else f" = {rec['value']}"
                self.console.print(
                    f"    {escape(str(rec.get('name')))}{escape(value)} [dim]{{{escape(attrs)}}}[/]"
                )
                shown += 1
                for v in rec["violations"][:5]:
                    self.console.print(
                        f"      [red]✗ {escape(v['rule'])}[/]: {escape(v['message'])} "
                        f"[dim]at {escape(v['path'])}[/]"
                    )
