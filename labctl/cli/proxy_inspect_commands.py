"""`labctl proxy sessions` and `labctl proxy export`: read a running proxy's inspection API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import requests
import typer
from rich.markup import escape

from labctl.errors import LabError

# More `labctl proxy` commands: labctl.cli mounts them into proxy_commands' group.
proxy_app = typer.Typer()
cli = typer.Typer()
cli.add_typer(proxy_app, name="proxy")

DEFAULT_ADMIN_URL = "http://127.0.0.1:4320"

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The proxy's admin URL. Default: the running lab's proxy, else $LABCTL_PROXY_ADMIN_URL, "
        f"else {DEFAULT_ADMIN_URL}.",
    ),
]


def admin_url(url: str | None) -> str:
    if url:
        return url.rstrip("/")
    env = os.environ.get("LABCTL_PROXY_ADMIN_URL")
    if env:
        return env.rstrip("/")
    from labctl.state import LabState

    if LabState.exists():
        try:
            lab = LabState.load()
            if lab.stage and "proxy" in lab.ports and "admin" in lab.ports["proxy"]:
                return lab.url("proxy", "admin")
        except LabError as exc:
            from labctl import ui

            ui.warn(f"{exc.message}; trying {DEFAULT_ADMIN_URL}")
    return DEFAULT_ADMIN_URL


def _headers(base: str) -> dict[str, str]:
    """The token for the running lab's own proxy (`up --auth`), else $LABCTL_PROXY_TOKEN; never sent elsewhere."""
    from labctl.state import LabState

    token = os.environ.get("LABCTL_PROXY_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if LabState.exists():
        try:
            lab = LabState.load()
            if lab.stage and "admin" in lab.ports.get("proxy", {}) and base == lab.url("proxy", "admin"):
                return lab.admin_headers()
        except LabError:
            ...
    return {}


def _get(base: str, path: str, params: dict[str, str] | None = None) -> requests.Response:
    try:
        r = requests.get(base + path, params=params, timeout=10, headers=_headers(base))
    except requests.RequestException as exc:
        raise LabError(
            f"cannot reach the proxy's admin API at {base}: {type(exc).__name__}",
            "start the lab (`labctl up module-1`) or the proxy (`labctl proxy serve`), or pass --url",
        ) from None
    if r.status_code == 401:
        raise LabError(
            f"{base}{path} demands the lab's token (the lab runs with `up --auth`)",
            "run this against your own lab, or set LABCTL_PROXY_TOKEN to its token (`labctl env`)",
        )
    if r.status_code != 200:
        raise LabError(
            f"{base}{path} answered HTTP {r.status_code}: {r.text[:200]}",
            "is that URL really the proxy's admin listener? (`labctl status` shows it)",
        )
    return r


@proxy_app.command("sessions")
def sessions(
    url: UrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per-session analytics from the proxy: tokens, cost, lines, commits, PRs, active time, decisions, errors."""
    base = admin_url(url)
    data: list[dict[str, Any]] = _get(base, "/api/sessions").json()["sessions"]
    if as_json:
        from labctl.ui import print_json

        print_json(data)
        return
    from labctl import ui

    if not data:
        ui.info(f"no sessions seen yet by the proxy at {base}: send data (`labctl emit`) and try again")
        return
    rows = []
    for s in data:
        t = s.get("tokens", {})
        e = s.get("edit_decisions", {})
        rows.append(
            [
                escape(s["session_id"]),
                f"{t.get('input', 0)}/{t.get('output', 0)}/{t.get('cacheRead', 0)}/{t.get('cacheCreation', 0)}",
                f"{s['cost_usd']:.4f}",
                f"+{s['lines_added']}/-{s['lines_removed']}",
                s["commits"],
                s["pull_requests"],
                f"{s['active_time_s']:g}",
                f"{e.get('accept', 0)}/{e.get('reject', 0)}",
                f"{s.get('api_requests', 0)}/{s['api_errors']}",
                escape(str(s.get("last_seen", ""))),
            ]
        )
    ui.table(
        [
            "session",
            "tokens in/out/cache r/c",
            "cost USD",
            "lines",
            "commits",
            "PRs",
            "active s",
            "edits ✓/✗",
            "API req/err",
            "last seen",
        ],
        rows,
        title=f"sessions seen by the proxy at {base}",
    )


@proxy_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="json or csv.")] = "json",
    what: Annotated[str, typer.Option("--what", help="sessions or violations.")] = "sessions",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default stdout).")
    ] = None,
    url: UrlOpt = None,
) -> None:
    """Export session analytics (or recent violations) as JSON or CSV — redacted like everything else."""
    if fmt not in ("json", "csv"):
        raise LabError(f"--format {fmt!r} is not known", "use json or csv")
    if what not in ("sessions", "violations"):
        raise LabError(f"--what {what!r} is not known", "use sessions or violations")
    base = admin_url(url)
    r = _get(base, "/api/export", {"format": fmt, "what": what})
    text = r.text if fmt == "csv" else r.text.rstrip() + "\n"
    if fmt == "json":
        import json

        text = json.dumps(r.json(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        from labctl import ui

        ui.success(f"wrote {what} from {base} to {output}")
