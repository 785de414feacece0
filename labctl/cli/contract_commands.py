"""`labctl contract ...`: check payloads against the contract offline, show, export and import it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from labctl.errors import LabError

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)

contract_app = typer.Typer(
    help="The telemetry contract (layer 1): check payloads, show, export, import.", no_args_is_help=True
)
cli.add_typer(contract_app, name="contract")

ContractOpt = Annotated[
    Path | None,
    typer.Option(
        "--contract",
        "-c",
        help="Contract file (labctl, seed or Weaver format) or Weaver registry directory. "
        "Default: lab/contracts/claude-code.yaml.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OutOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")]


def _load(path: Path | None) -> Any:  # a labctl.contract.Contract
    from labctl.contract import default_contract_path, load_contract

    return load_contract(path or default_contract_path())


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        from labctl import ui

        ui.success(f"wrote {output}")


@contract_app.command("check")
def check(
    payload: Annotated[
        str, typer.Argument(help="OTLP payload file (protobuf or OTLP/JSON, may be gzip), or - for stdin.")
    ],
    contract: ContractOpt = None,
    signal: Annotated[str, typer.Option("--signal", help="auto, metrics, logs or traces.")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Validate an OTLP payload offline: every violation with its path. Exit 1 when anything violates."""
    from labctl.otlp.payload_io import read_payloads

    if signal not in ("auto", "metrics", "logs", "traces"):
        raise LabError(f"--signal {signal!r} is not known", "use auto, metrics, logs or traces")
    if payload == "-":
        data, source = sys.stdin.buffer.read(), "<stdin>"
    else:
        p = Path(payload)
        if not p.is_file():
            raise LabError(
                f"payload file {payload} does not exist", "pass an OTLP payload file, or - for stdin"
            )
        data, source = p.read_bytes(), payload
    c = _load(contract)
    payloads = read_payloads(data, source, signal)
    results = []
    for i, (sig, request) in enumerate(payloads):
        ev = c.evaluate(sig, request)
        prefix = f"payload[{i}]." if len(payloads) > 1 else ""
        violations = [{**v, "path": prefix + v["path"]} for v in ev.violations()]
        results.append((sig, ev.total, ev.rejected, violations))
    all_violations = [v for r in results for v in r[3]]
    if as_json:
        from labctl.ui import print_json

        out = [
            {
                "payload": source if len(payloads) == 1 else f"{source}[{i}]",
                "contract": c.name,
                "signal": sig,
                "items": total,
                "violating_items": rejected,
                "violations": viol,
            }
            for i, (sig, total, rejected, viol) in enumerate(results)
        ]
        print_json(out[0] if len(out) == 1 else out)
    else:
        from labctl import ui

        for _sig, _total, _rejected, violations in results:
            # One violation per block. The path has a line of its own, unabridged and never split (a
            # student copies it to find the spot in the payload); it passes the edge only when it must.
            for v in violations:
                ui.console.print(f"[red]✗ {escape(v['rule'])}[/] at", soft_wrap=True)
                ui.console.print(f"  {escape(v['path'])}", soft_wrap=True)
                for line in ui.wrap(v["message"], ui.width(), 4):
                    ui.console.print(f"    {escape(line)}", soft_wrap=True)
        total = sum(r[1] for r in results)
        rejected = sum(r[2] for r in results)
        sigs = {r[0] for r in results}
        noun = (
            {"metrics": "data points", "logs": "log records", "traces": "spans"}[sigs.pop()]
            if len(sigs) == 1
            else "items"
        )
        where = f"{source} ({len(payloads)} payloads)" if len(payloads) > 1 else source
        if all_violations:
            ui.error(
                f"{rejected} of {total} {noun} violate contract '{c.name}'"
                + (f" ({len(payloads)} payloads)" if len(payloads) > 1 else ""),
                "fix the sender (or the contract, if the contract is what is wrong)",
            )
        else:
            ui.success(f"{where}: all {total} {noun} conform to contract '{c.name}'")
    if all_violations:
        raise typer.Exit(1)


@contract_app.command("show")
def show(contract: ContractOpt = None, as_json: JsonOpt = False) -> None:
    """The metrics, events and spans a contract defines."""
    c = _load(contract)
    if as_json:
        from labctl.ui import print_json

        print_json(c.spec.to_dict())
        return
    from rich.padding import Padding
    from rich.text import Text

    from labctl import ui

    # One block per name, names unabridged (a table would split them at 80 columns).
    def attrs(rule_attrs: Any, skip: tuple[str, ...] = ()) -> str:
        return (
            ", ".join(
                f"{a.name}{'*' if a.requirement == 'required' else ''}"
                + (f"∈{{{','.join(map(str, a.values))}}}" if a.values else "")
                + (f"~/{a.pattern}/" if a.pattern else "")
                for a in rule_attrs.values()
                if a.name not in skip
            )
            or "—"
        )

    out = ui.console
    out.print(
        f"contract {escape(c.name)} ({c.spec.dialect} format, {escape(str(c.path))}) — * = required",
        soft_wrap=True,
    )
    sections: list[tuple[str, list[tuple[str, str, str]]]] = [
        (
            "metrics",
            [
                (
                    m.name,
                    (
                        f"{m.instrument}, unit {m.unit or '(none)' if m.unit is not None else 'any'}, "
                        f"temporality {m.temporality}"
                    ),
                    attrs(m.attributes),
                )
                for m in c.spec.metrics.values()
            ],
        ),
        (
            "events",
            [
                (e.name, "log record", attrs(e.attributes, ("event.timestamp", "event.sequence")))
                for e in c.spec.events.values()
            ],
        ),
        (
            "spans",
            [
                (
                    sp.name,
                    f"{sp.kind} span"
                    + (f", under {', '.join(sp.parents)}" if sp.parents else "")
                    + (", root" if sp.root else ""),
                    attrs(sp.attributes),
                )
                for sp in c.spec.spans.values()
            ],
        ),
    ]
    for title, entries in sections:
        if not entries:
            continue
        out.print(f"\n[bold]{title}[/]")
        for name, what, attributes in entries:
            out.print(f"  [cyan]{escape(name)}[/]  {escape(what)}", soft_wrap=True)
            out.print(Padding(Text(attributes), (0, 0, 0, 6)))


@contract_app.command("validate")
def validate(
    contract: Annotated[Path, typer.Argument(help="Contract file or Weaver registry directory.")],
) -> None:
    """Load a contract and report its problems with file:line (exit 2), or what it defines."""
    from labctl import ui

    c = _load(contract)
    ui.success(
        f"{contract}: ok — {c.spec.dialect} format, {len(c.spec.metrics)} metrics, {len(c.spec.events)} events"
        + (f", {len(c.spec.spans)} spans" if c.spec.spans else "")
    )


@contract_app.command("schema")
def schema(
    contract: ContractOpt = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="Only the record shape, without the contract's rules.")
    ] = False,
    output: OutOpt = None,
) -> None:
    """JSON Schema of the proxy's payload records (JSONL log lines, /api/payloads/{id} records)."""
    from labctl.contract.schema import record_schema

    _write(json.dumps(record_schema(None if plain else _load(contract)), indent=2), output)


@contract_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="weaver, labctl or json-schema.")] = "weaver",
    contract: ContractOpt = None,
    output: OutOpt = None,
) -> None:
    """Write the contract as an OpenTelemetry Weaver registry, in labctl's format, or as JSON Schema."""
    c = _load(contract)
    if fmt == "weaver":
        from labctl.contract.weaver import dump_weaver

        _write(dump_weaver(c.spec), output)
    elif fmt == "labctl":
        import yaml

        _write(yaml.safe_dump(c.spec.to_dict(), sort_keys=False, allow_unicode=True, width=110), output)
    elif fmt == "json-schema":
        from labctl.contract.schema import record_schema

        _write(json.dumps(record_schema(c), indent=2), output)
    else:
        raise LabError(f"--format {fmt!r} is not known", "use weaver, labctl or json-schema")


@contract_app.command("import")
def import_(
    source: Annotated[
        Path, typer.Argument(help="Weaver registry file or directory (or a seed-format file).")
    ],
    output: OutOpt = None,
) -> None:
    """Convert a Weaver registry (or a seed-format contract) into labctl's contract format."""
    import yaml

    from labctl.contract import load_contract

    c = load_contract(source)
    header = f"# Imported by labctl contract import from {source.name} ({c.spec.dialect} format).\n"
    _write(header + yaml.safe_dump(c.spec.to_dict(), sort_keys=False, allow_unicode=True, width=110), output)


@contract_app.command("sample")
def sample(
    signal: Annotated[str, typer.Option("--signal", help="metrics or logs.")] = "metrics",
    fmt: Annotated[str, typer.Option("--format", "-f", help="json (OTLP/JSON) or protobuf.")] = "json",
    session: Annotated[str, typer.Option("--session", help="session.id to put on the data.")] = "sess-1",
    output: OutOpt = None,
) -> None:
    """Write a conforming Claude Code-shaped payload, to edit and feed to `labctl contract check`."""
    from labctl.contract.samples import sample_events, sample_metrics

    if signal not in ("metrics", "logs"):
        raise LabError(f"--signal {signal!r} is not known", "use metrics or logs")
    msg = sample_metrics(session) if signal == "metrics" else sample_events(session)
    if fmt == "json":
        from labctl.otlp.codec import to_otlp_json

        _write(json.dumps(to_otlp_json(msg), indent=2), output)
    elif fmt == "protobuf":
        if output is None:
            raise LabError("protobuf output is binary", "pass --output FILE")
        output.write_bytes(msg.SerializeToString())
    else:
        raise LabError(f"--format {fmt!r} is not known", "use json or protobuf")


@contract_app.command("propose")
def propose(
    payloads: Annotated[
        list[Path] | None,
        typer.Argument(
            help="OTLP payload files to learn from (protobuf or OTLP/JSON). None: ask the proxy (learning mode).",
            show_default=False,
        ),
    ] = None,
    contract: ContractOpt = None,
    url: Annotated[
        str | None, typer.Option("--url", help="The proxy's admin URL (default: the running lab's proxy).")
    ] = None,
    stamp: Annotated[
        str | None,
        typer.Option("--stamp", help="Text for the brief of every new entry (default: 'observed <today>')."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--write", "-o", help="Write the patched contract (labctl format) to this file."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What the telemetry sent has that the contract lacks: the changes, as a Weaver registry diff.

    From the proxy while it learns (`labctl contract learn`, or `contract.mode: learn` in its config), or
    from payload files. `--write FILE` writes the patched contract; review it, then point the proxy at it."""
    import time

    import yaml

    from labctl.contract.drift import propose as make_proposal
    from labctl.contract.drift import registry_diff, weaver_changes
    from labctl.contract.shape import TelemetryShape

    c = _load(contract)
    if payloads:
        from labctl.otlp.payload_io import read_payloads

        shape = TelemetryShape()
        for path in payloads:
            if not path.is_file():
                raise LabError(
                    f"payload file {path} does not exist", "pass OTLP payload files, or none to ask the proxy"
                )
            for sig, request in read_payloads(path.read_bytes(), str(path), "auto"):
                shape.observe(c.evaluate(sig, request))
        source = f"{len(payloads)} payload file(s)"
    else:
        from labctl.cli.proxy_inspect_commands import _get, admin_url

        base = admin_url(url)
        drift = _get(base, "/api/contract/drift").json()
        if not drift.get("recording"):
            raise LabError(
                f"the proxy at {base} is not in learning mode (mode {drift.get('mode')}): it recorded nothing",
                "switch learning on with `labctl contract learn`, run Claude Code, then run this again; "
                "or pass payload files",
            )
        shape = TelemetryShape.from_dict(drift["observed"] or {})
        source = f"the proxy at {base} (learning since {drift.get('since')})"
    patched, changes = make_proposal(
        c.spec, shape, stamp or f"observed {time.strftime('%Y-%m-%d', time.gmtime())}"
    )
    if output is not None:
        header = (
            f"# Contract '{c.name}' patched by labctl contract propose from {source}.\n"
            f"# {len(changes)} change(s); comments of the original file are not kept.\n"
        )
        output.write_text(
            header + yaml.safe_dump(patched.to_dict(), sort_keys=False, allow_unicode=True, width=110),
            encoding="utf-8",
        )
    if as_json:
        from labctl.ui import print_json

        print_json(
            {
                **weaver_changes(c.spec, changes),
                "source": source,
                "written": str(output) if output is not None else None,
            }
        )
        return
    from labctl import ui

    if not changes:
        ui.success(f"contract '{c.name}' already covers everything seen in {source}")
        return
    # One line per change, names unabridged (a table would split them at 80 columns).
    ui.console.print(
        f"{len(changes)} change(s) to contract '{escape(c.name)}' from {escape(source)}:", soft_wrap=True
    )
    for ch in changes:
        sign = "[green]+[/]" if ch.type == "added" else "[yellow]~[/]"
        where = " ".join(x for x in (ch.name or "(every signal)", ch.attribute) if x)
        new = f" → {ch.value}" if ch.value else ""
        seen = f"  [dim]({ch.observed})[/]" if ch.observed else ""
        ui.console.print(f"{sign} {ch.what:<11} {escape(where)}{escape(new)}{seen}", soft_wrap=True)
    sys.stdout.flush()
    sys.stdout.write(registry_diff(c.spec, patched))
    if output is not None:
        ui.success(f"wrote the patched contract to {output}")
        ui.info(f"check it: `labctl contract validate {output}`; use it: LAB_PROXY_CONTRACT={output}")
    else:
        ui.info("write it with --write FILE")


@contract_app.command("learn")
def learn(
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop recording (and forget what was recorded).")
    ] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="The proxy's admin URL (default: the running lab's proxy).")
    ] = None,
) -> None:
    """Start (or --stop) the proxy's learning: it records what the telemetry has that the contract lacks.

    The proxy keeps forwarding and checking as before; `labctl contract propose` then shows the patch."""
    import requests

    from labctl import ui
    from labctl.cli.proxy_inspect_commands import _headers, admin_url

    base = admin_url(url)
    try:
        r = requests.put(
            base + "/api/contract/drift", json={"recording": not stop}, headers=_headers(base), timeout=10
        )
    except requests.RequestException as exc:
        raise LabError(
            f"cannot reach the proxy's admin API at {base}: {type(exc).__name__}",
            "start the lab (`labctl up module-1`) or the proxy (`labctl proxy serve`), or pass --url",
        ) from None
    if r.status_code != 200:
        raise LabError(
            f"{base}/api/contract/drift answered HTTP {r.status_code}: {r.text[:200]}",
            "is that URL the proxy's admin listener, and is this labctl as new as the proxy?",
        )
    if stop:
        ui.success(f"the proxy at {base} stopped learning (mode {r.json().get('mode')})")
    else:
        ui.success(
            f"the proxy at {base} is learning since {r.json().get('since')}: run Claude Code, then "
            "`labctl contract propose`"
        )
