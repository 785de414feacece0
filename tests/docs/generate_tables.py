"""Write the tables of the docs from the files they describe, between `<!-- generated:NAME -->` markers.

    python tests/docs/generate_tables.py          # rewrite the docs in place
    python tests/docs/generate_tables.py --check  # exit 1 when a doc is out of date (the test does this)

Sources: lab/lab.yaml and compose/versions.env (through labctl's model), the contract
(lab/contracts/claude-code.yaml), the proxy's OpenAPI document, lab/prometheus/rules/,
dashboards/*.json and the playbook names `labctl check` links to (labctl/checks/playbooks.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clitree
import docsmd

REPO = docsmd.REPO
MARKER_RE = re.compile(
    r"(?P<open><!-- generated:(?P<name>[a-z0-9-]+) -->)\n(?P<body>.*?)(?P<close><!-- /generated:(?P=name) -->)",
    re.DOTALL,
)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _code(text: Any) -> str:
    # Inline code that may contain backticks or pipes: double backticks keep it one span.
    text = _cell(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _missing(what: str) -> str:
    return f"_Not generated: {what} does not exist in this checkout._"


# ---- lab model -------------------------------------------------------------------------------------


def images() -> str:
    from labctl.model import load_model

    versions = load_model(REPO).versions
    rows = [[_code(k), _code(v)] for k, v in sorted(versions.items()) if k.endswith("_IMAGE")]
    return _table(["variable", "image"], rows)


def ports() -> str:
    from labctl.model import load_model

    model = load_model(REPO)
    rows = []
    for svc in model.services.values():
        for port in svc.ports.values():
            rows.append([str(svc.layer), _code(svc.name), _code(port.name), str(port.host), _cell(port.what)])
    return _table(["layer", "service", "port", "default", "what"], rows)


# ---- contract --------------------------------------------------------------------------------------


def _attr_summary(attrs: dict[str, Any]) -> str:
    parts = []
    for key, attr in attrs.items():
        text = f"`{key}`"
        if attr.requirement == "required":
            text = f"**{text}**"
        allowed = [str(v) for v in attr.values or ()] + ([f"`{attr.pattern}`…"] if attr.pattern else [])
        if allowed:
            text += " (" + ", ".join(allowed) + ")"
        if attr.sensitive:
            text += " _redacted_"
        parts.append(text)
    return ", ".join(parts) or "—"


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "—"
    return f"{'−∞' if lo is None else format(lo, 'g')} … {'∞' if hi is None else format(hi, 'g')}"


def _contract():
    from labctl.contract.loader import read_contract_file

    path = REPO / "lab" / "contracts" / "claude-code.yaml"
    return read_contract_file(path) if path.exists() else None


def contract_metrics() -> str:
    from labctl.contract.promname import prometheus_name

    spec = _contract()
    if spec is None:
        return _missing("lab/contracts/claude-code.yaml")
    rows = []
    for m in spec.metrics.values():
        prom = m.prometheus_name or prometheus_name(
            m.name, m.unit or "", monotonic_sum=m.instrument == "counter", namespace=spec.prometheus_namespace
        )
        card = ", ".join(f"{k} ≤ {v}" for k, v in m.cardinality.items()) or "—"
        rows.append(
            [
                _code(m.name),
                _code(prom),
                m.instrument,
                _code(m.unit) if m.unit else "—",
                m.temporality,
                _attr_summary(m.attributes),
                _range(m.min, m.max),
                _cell(card),
            ]
        )
    table = _table(
        [
            "metric",
            "in Prometheus",
            "instrument",
            "unit",
            "temporality",
            "attributes",
            "range",
            "cardinality",
        ],
        rows,
    )
    common = _attr_summary(spec.common_attributes)
    resource = _attr_summary(spec.resource)
    return (
        f"{table}\n\nRequired attributes are in **bold**. Allowed on every metric, event and span: {common}. "
        f"Resource attributes: {resource}."
    )


def contract_events() -> str:
    spec = _contract()
    if spec is None:
        return _missing("lab/contracts/claude-code.yaml")
    rows = [
        [_code(e.name), _cell(e.description) or "—", _attr_summary(e.attributes)]
        for e in spec.events.values()
    ]
    return _table(["event", "what", "attributes"], rows)


def contract_spans() -> str:
    spec = _contract()
    if spec is None:
        return _missing("lab/contracts/claude-code.yaml")
    rows = []
    for sp in spec.spans.values():
        where = ", ".join(_code(p) for p in sp.parents or ()) if sp.parents is not None else ""
        where = " or ".join(x for x in (where, "(root)" if sp.root else "") if x) or "not checked"
        rows.append(
            [_code(sp.name), sp.kind, where, _cell(sp.description) or "—", _attr_summary(sp.attributes)]
        )
    return _table(["span", "kind", "parent", "what", "attributes"], rows)


def emulator_differences() -> str:
    from labctl.emulator.conformance import REMAINING

    rows = []
    seen: dict[tuple[str, str, str], list[str]] = {}
    for r in REMAINING:  # one row per difference and reason; wildcard rows gather their signals
        d = r.difference
        key = (d.name if d.name != "*" else "every metric, event and span", d.aspect, r.why)
        seen.setdefault(key, [])
        if d.detail and d.detail not in seen[key]:
            seen[key].append(d.detail)
    for (name, aspect, why), details in seen.items():
        what = {
            "only_real": "only the real client sends it",
            "only_emulated": "only the emulator sends it",
            "attribute_only_emulated": "attributes only the emulator sends",
            "attribute_only_real": "attributes only the real client sends",
        }.get(aspect, aspect)
        rows.append(
            [
                _code(name) if not name.startswith("every") else name,
                what,
                ", ".join(_code(x) for x in details) or "—",
                _cell(why),
            ]
        )
    return _table(["where", "difference", "keys", "why it stays"], rows)


# ---- proxy API -------------------------------------------------------------------------------------


def _openapi_file() -> Path | None:
    found = sorted(p for p in (REPO / "labctl").rglob("openapi*") if p.suffix in (".yaml", ".yml", ".json"))
    return found[0] if found else None


def proxy_api() -> str:
    path = _openapi_file()
    if path is None:
        return _missing("the proxy's OpenAPI document (labctl/**/openapi.yaml)")
    doc = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    rows = []
    for route, ops in (doc.get("paths") or {}).items():
        for method, op in ops.items():
            if method.lower() not in ("get", "post", "put", "delete", "patch"):
                continue
            params = (
                ", ".join(
                    f"`{p.get('name')}`"
                    for p in op.get("parameters", [])
                    if isinstance(p, dict) and p.get("name")
                )
                or "—"
            )
            rows.append(
                [
                    f"`{method.upper()} {route}`",
                    _cell(op.get("summary") or op.get("description") or ""),
                    params,
                ]
            )
    rel = path.relative_to(REPO)
    return (
        _table(["request", "what it returns", "parameters"], rows)
        + f"\n\nThe full document: `{rel}` (OpenAPI {doc.get('openapi', '?')}); the proxy also serves it."
    )


# ---- Prometheus rules and dashboards ---------------------------------------------------------------


def _rule_files() -> Iterator[Path]:
    folder = REPO / "lab" / "prometheus" / "rules"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if (
                path.suffix in (".yml", ".yaml")
                and not path.stem.endswith("_test")
                and "test" not in path.parts
            ):
                yield path


def alert_rules() -> str:
    rows = []
    for path in _rule_files():
        doc = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" not in rule:
                    continue
                ann = rule.get("annotations") or {}
                rows.append(
                    [
                        f"`{rule['alert']}`",
                        _cell(group.get("name", "")),
                        _code(" ".join(str(rule["expr"]).split())),
                        _cell(rule.get("for", "0s")),
                        _cell((rule.get("labels") or {}).get("severity", "")),
                        _cell(ann.get("summary", "")),
                    ]
                )
    if not rows:
        return _missing("alert rules under lab/prometheus/rules/")
    return _table(["alert", "group", "expression", "for", "severity", "summary"], rows)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def dashboard_queries() -> str:
    out = []
    for path in sorted((REPO / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        rows = []
        for panel in _panels(dash.get("panels") or []):
            for target in panel.get("targets") or []:
                expr = target.get("expr")
                if expr:
                    rows.append([_cell(panel.get("title", "")), _code(" ".join(str(expr).split()))])
        out.append(
            f"**{_cell(dash.get('title', path.stem))}** (`dashboards/{path.name}`, uid "
            f"`{dash.get('uid', '?')}`)\n\n" + _table(["panel", "query"], rows)
        )
    return "\n\n".join(out) if out else _missing("dashboards/*.json")


# ---- playbooks -------------------------------------------------------------------------------------


def _checked_playbooks() -> dict[str, str]:
    from labctl.checks.playbooks import PLAYBOOKS

    return dict(PLAYBOOKS)


def playbooks_checked() -> str:
    rows = [[f"[{name}]({name}.md)", _cell(what)] for name, what in _checked_playbooks().items()]
    return _table(["playbook", "when"], rows)


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].removeprefix("Playbook: ").strip()
    return path.stem


def playbooks_common() -> str:
    checked = _checked_playbooks()
    rows = []
    for path in sorted((REPO / "lab" / "playbooks").glob("*.md")):
        if path.name == "README.md" or path.stem in checked:
            continue
        rows.append([f"[{path.stem}]({path.name})", _cell(_title(path))])
    return _table(["playbook", "problem"], rows)


# ---- CLI reference ---------------------------------------------------------------------------------


def _walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, cmd
    for name in sorted(getattr(cmd, "commands", {}) or {}):
        yield from _walk(cmd.commands[name], [*path, name])


def _param_row(param: Any) -> list[str]:
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`" + ("" if param.required else " (optional)")
    else:
        name = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        if not (param.is_flag or param.count):
            kind, _ = clitree.value_kind(param)
            name += f" `{param.metavar or {'int': 'N', 'float': 'X'}.get(kind, 'TEXT')}`"
    _, choices = clitree.value_kind(param)
    helptext = _cell(getattr(param, "help", "") or "")
    if helptext and not helptext.endswith((".", ")")):
        helptext += "."
    if choices:
        helptext += " One of: " + ", ".join(f"`{c}`" for c in choices) + "."
    default = param.default
    if param.param_type_name == "option" and default not in (None, False, (), []) and not callable(default):
        helptext += f" Default: `{default}`."
    return [name, helptext or "—"]


def cli_reference() -> str:
    import typer.main

    import labctl.cli

    root = typer.main.get_command(labctl.cli.application())
    out = []
    for path, cmd in _walk(root, ["labctl"]):
        if getattr(cmd, "hidden", False):
            continue
        title = " ".join(path)
        helptext = (cmd.help or "").strip().split("\n\n")[0].replace("\n", " ")
        params = [p for p in cmd.params if p.param_type_name in ("argument", "option") and p.name != "help"]
        is_group = bool(getattr(cmd, "commands", None))
        section = [f"### `{title}`", "", _cell(helptext) or "—"]
        if params:
            section += ["", _table(["argument / option", "meaning"], [_param_row(p) for p in params])]
        if is_group and len(path) > 1:
            section += ["", "Commands: " + ", ".join(f"`{title} {n}`" for n in sorted(cmd.commands)) + "."]
        out.append("\n".join(section))
    return "\n\n".join(out)


def faults() -> str:
    from labctl.faults.registry import FAULTS

    rows = []
    for f in FAULTS.values():
        opts = (
            "<br>".join(
                f"`--{o.name}` {' / '.join(f'`{c}`' for c in o.choices) if o.choices else '`N`'}"
                + (f" (default `{o.default}`)" if o.default is not None else "")
                for o in f.options
            )
            or "—"
        )
        alert = f.alert({o.name: o.default for o in f.options}) if f.options or f.alert else None
        rows.append(
            [
                f"`{f.name}`",
                str(f.layer),
                _cell(f.summary),
                opts,
                f"`{alert}`" if alert else "—",
                f"[{f.playbook}](../playbooks/{f.playbook}.md)" if f.playbook else "—",
            ]
        )
    return _table(
        ["fault", "first failing layer", "what it does", "options", "alert (defaults)", "playbook"], rows
    )


def matrix_cases() -> str:
    from labctl.matrix.cases import load_cases
    from labctl.matrix.report import expected_text

    rows = []
    for case in load_cases():
        d = case.dims
        rows.append(
            [
                f"`{case.id}`",
                _cell(d.get("exporter", "")),
                _cell(d.get("protocol", "")),
                _cell(d.get("endpoint", "")),
                _cell(d.get("interval", "")),
                _cell(d.get("timeout", "")),
                _cell(d.get("headers", "")),
                _cell(expected_text(case.expect)),
                _cell(case.focus),
                "ci" if "ci" in case.tags else "",
            ]
        )
    return _table(
        [
            "case",
            "exporter",
            "protocol",
            "endpoint",
            "interval ms",
            "timeout ms",
            "headers",
            "expected behaviour",
            "debugging focus",
            "CI",
        ],
        rows,
    )


def test_files() -> str:
    import ast

    rows = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        rel = path.relative_to(REPO)
        if "node_modules" in rel.parts or not (
            path.name.startswith(("test_", "bench")) or rel.parts[1] == "benchmarks"
        ):
            continue
        if path.name == "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = doc.strip().split("\n\n")[0].replace("\n", " ")
        rows.append([f"`{rel.parts[1]}`", f"`{path.name}`", _cell(first) or "—"])
    return _table(["folder", "file", "what it proves"], rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "cli-reference": cli_reference,
    "test-files": test_files,
    "matrix-cases": matrix_cases,
    "faults": faults,
    "images": images,
    "ports": ports,
    "contract-metrics": contract_metrics,
    "contract-events": contract_events,
    "contract-spans": contract_spans,
    "emulator-differences": emulator_differences,
    "proxy-api": proxy_api,
    "alert-rules": alert_rules,
    "dashboard-queries": dashboard_queries,
    "playbooks-checked": playbooks_checked,
    "playbooks-common": playbooks_common,
}


def render(text: str, cache: dict[str, str] | None = None) -> str:
    """The document with every generated section rewritten from its source."""
    cache = {} if cache is None else cache

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in SECTIONS:
            raise KeyError(f"unknown generated section {name!r}; known: {', '.join(SECTIONS)}")
        if name not in cache:
            cache[name] = SECTIONS[name]().rstrip("\n")
        return f"{m.group('open')}\n{cache[name]}\n{m.group('close')}"

    return MARKER_RE.sub(sub, text)


def documents_with_sections() -> list[Path]:
    return [p for p in docsmd.doc_files() if "<!-- generated:" in p.read_text(encoding="utf-8")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date docs")
    args = parser.parse_args(argv)
    cache: dict[str, str] = {}
    stale = []
    for path in documents_with_sections():
        text = path.read_text(encoding="utf-8")
        new = render(text, cache)
        if new != text:
            stale.append(path.relative_to(REPO))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for rel in stale:
        print(("out of date: " if args.check else "updated: ") + str(rel))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
