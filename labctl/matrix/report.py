"""Matrix results as a terminal table, Markdown, JSON and one self-contained HTML page."""

from __future__ import annotations

import html
import json
import platform
import time
from pathlib import Path
from typing import Any

from labctl.matrix.verdict import CaseResult

REGENERATE = "labctl matrix run --markdown lab/matrix/REPORT.md"


def expected_text(e: dict[str, Any]) -> str:
    parts = [e["outcome"]]
    if e.get("seen_in"):
        parts.append("in " + ", ".join(e["seen_in"]))
    if e.get("not_seen_in"):
        parts.append("not in " + ", ".join(e["not_seen_in"]))
    if "error" in e:
        parts.append(f"error /{e['error']}/")
    if "notice" in e:
        parts.append(f"notice /{e['notice']}/")
    if "retries" in e:
        parts.append("retries" if e["retries"] else "no retry")
    if "gives_up_s" in e:
        parts.append(f"gives up in {e['gives_up_s'][0]}–{e['gives_up_s'][1]} s")
    if "first_export_s" in e:
        parts.append(f"first export {e['first_export_s'][0]}–{e['first_export_s'][1]} s")
    if "min_exports" in e:
        parts.append(f"≥{e['min_exports']} exports")
    if e.get("hops_agree"):
        parts.append("proxy and Collector counts agree")
    return "; ".join(parts)


def observed_text(o: dict[str, Any]) -> str:
    if o.get("outcome") == "harness_error":
        return "harness error"
    parts = [o["outcome"]]
    seen = [k for k, v in o.get("seen", {}).items() if v]
    if seen:
        parts.append("in " + ", ".join(seen))
    if o.get("startup_error"):
        parts.append(o["startup_error"].replace("error: ", "")[:160])
    elif o.get("messages"):
        msg = next((m for m in o["messages"] if m.startswith("ERROR")), o["messages"][0])
        parts.append(" ".join(msg.split())[:160])
    if o.get("retried"):
        parts.append(f"{o['retried']} retries")
    if o.get("gives_up_s") is not None and o.get("outcome") == "failed":
        parts.append(f"gave up after {o['gives_up_s']} s")
    if o.get("first_export_s") is not None:
        parts.append(f"first export {o['first_export_s']} s")
    if o.get("metric_exports"):
        parts.append(f"{o['metric_exports']} metric exports")
    return "; ".join(parts)


def to_json(results: list[CaseResult], wall_s: float) -> dict[str, Any]:
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.system()} {platform.machine()}, {__import__('os').cpu_count()} cores",
        "wall_seconds": round(wall_s, 1),
        "total": len(results),
        "expected": sum(r.ok for r in results),
        "unexpected": sum(not r.ok for r in results),
        "cases": [r.as_dict() for r in results],
    }


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(results: list[CaseResult], wall_s: float) -> str:
    ok = sum(r.ok for r in results)
    lines = [
        "# Configuration test matrix — expected vs observed",
        "",
        (
            f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{REGENERATE}` "
            f"({len(results)} cases, {ok} as expected, {len(results) - ok} unexpected, wall time {wall_s:.0f} s on "
            f"{__import__('os').cpu_count()} cores)."
        ),
        "",
        (
            "Every case ran `labctl emit` configured only through Claude Code's environment variables, against real "
            "receivers started for that case alone: the lab's Collector (`otelcol-lab` with "
            "`collector-configs/base.yaml`, plus `auth.yaml` or a TLS overlay made at run time), the logging proxy, "
            "Prometheus, or a loopback stand-in (a receiver that never answers, a host that drops connections, a port "
            'nobody listens on). "Remote" and "SaaS" are Collectors on 127.0.0.2 and 127.0.0.3. Cases and their '
            "expectations: `lab/matrix/cases.yaml`."
        ),
        "",
        "| # | case | exporter | protocol | endpoint | interval | timeout | headers | expected | observed | ✓ |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        d = r.case.dims
        lines.append(
            "| "
            + " | ".join(
                _md_cell(x)
                for x in [
                    str(i),
                    f"`{r.case.id}`",
                    d["exporter"],
                    d["protocol"],
                    d["endpoint"],
                    d["interval"],
                    d["timeout"],
                    d["headers"],
                    expected_text(r.case.expect),
                    observed_text(r.observed),
                    "✓" if r.ok else "✗ " + "; ".join(r.mismatches),
                ]
            )
            + " |"
        )
    lines += ["", "## Debugging focus per case", ""]
    for r in results:
        lines.append(f"- **`{r.case.id}`** — {r.case.title}. *Focus:* {r.case.focus}")
    lines.append("")
    return "\n".join(lines)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px} .sum{color:#555;margin-bottom:16px}
table{border-collapse:collapse;width:100%;background:#fff} th,td{border:1px solid #dde1e7;padding:6px 8px;
vertical-align:top;text-align:left;overflow-wrap:break-word} th{background:#eef1f5;position:sticky;top:0}
table{table-layout:fixed} td:nth-child(9),td:nth-child(10),td:nth-child(11),td:nth-child(2){overflow-wrap:anywhere}
tr.bad td{background:#fff1f0} td.v{font-weight:600} td.ok{color:#137333} td.no{color:#b3261e}
code{font:12px ui-monospace,monospace;background:#f0f2f5;padding:1px 3px;border-radius:3px}
.focus{color:#555;font-size:12px} input{padding:6px;width:320px;margin-bottom:10px}
"""

_JS = """
document.getElementById('q').addEventListener('input',e=>{const q=e.target.value.toLowerCase();
document.querySelectorAll('tbody tr').forEach(tr=>{tr.style.display=tr.textContent.toLowerCase().includes(q)?'':'none'})});
"""


_COLUMNS = (
    ("#", 3),
    ("case", 17),
    ("exporter", 7),
    ("protocol", 7),
    ("endpoint", 8),
    ("interval", 5),
    ("timeout", 5),
    ("headers", 6),
    ("expected", 15),
    ("observed", 15),
    ("verdict", 8),
    ("time", 4),
)


def to_html(results: list[CaseResult], wall_s: float) -> str:
    ok = sum(r.ok for r in results)
    e = html.escape
    rows = []
    for i, r in enumerate(results, 1):
        d = r.case.dims
        verdict = "✓ as expected" if r.ok else "✗ " + "; ".join(r.mismatches)
        rows.append(
            f"<tr class='{'ok' if r.ok else 'bad'}'><td>{i}</td><td><code>{e(r.case.id)}</code><br>{e(r.case.title)}"
            f"<div class='focus'>{e(r.case.focus)}</div></td><td>{e(d['exporter'])}</td><td>{e(d['protocol'])}</td>"
            f"<td>{e(d['endpoint'])}</td><td>{e(d['interval'])}</td><td>{e(d['timeout'])}</td><td>{e(d['headers'])}</td>"
            f"<td>{e(expected_text(r.case.expect))}</td><td>{e(observed_text(r.observed))}</td>"
            f"<td class='v {'ok' if r.ok else 'no'}'>{e(verdict)}</td><td>{r.seconds:.1f}s</td></tr>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>labctl configuration matrix</title>"
        f"<style>{_CSS}</style></head><body><h1>Configuration test matrix — expected vs observed</h1>"
        f"<div class='sum'>{len(results)} cases · {ok} as expected · {len(results) - ok} unexpected · wall time "
        f"{wall_s:.0f} s · generated {e(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</div>"
        "<input id='q' placeholder='filter (id, protocol, outcome…)'>"
        "<table><thead><tr>"
        + "".join(f"<th style='width:{w}%'>{h}</th>" for h, w in _COLUMNS)
        + "</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table><script>{_JS}</script></body></html>"
    )


def write_reports(
    results: list[CaseResult], wall_s: float, report_dir: Path, markdown: Path | None = None
) -> dict[str, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": report_dir / "report.json",
        "markdown": markdown or report_dir / "REPORT.md",
        "html": report_dir / "report.html",
    }
    paths["json"].write_text(json.dumps(to_json(results, wall_s), indent=2, default=str))
    paths["markdown"].parent.mkdir(parents=True, exist_ok=True)
    paths["markdown"].write_text(to_markdown(results, wall_s))
    paths["html"].write_text(to_html(results, wall_s))
    return paths
