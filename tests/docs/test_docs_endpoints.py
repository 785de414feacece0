"""URLs the docs tell a student to open or curl point at real things: a port the lab model defines,
and on the proxy's admin port a path its OpenAPI document declares. Commands write URLs as
`$(labctl url SERVICE.PORT)/path` (so they work with --free-ports / --port-offset): the SERVICE.PORT
must exist in lab/lab.yaml, and the path is checked like a literal URL's."""

from __future__ import annotations

import json
import re

import docsmd

from labctl.model import load_model

URL_RE = re.compile(r"http://127\.0\.0\.1:(\d+)(/[^\s'\"`)|]*)?")
# Ports that are not the lab's own but appear on purpose: the emulator's Prometheus exporter
# (OTEL_METRICS_EXPORTER=prometheus serves :9464).
OTHER_PORTS = {9464}
# `$(labctl url proxy.admin)/api/stats` in a command, or `labctl url prometheus.web` in prose.
LABCTL_URL_RE = re.compile(r"labctl url ([a-z][\w-]*)(?:\.([a-z][\w-]*))?\)?(/[^\s'\"`)|]*)?")


def _doc_lines():
    for path in docsmd.doc_files():
        rel = str(path.relative_to(docsmd.REPO))
        text = path.read_text(encoding="utf-8")
        # Transcripts are what the tool printed (relay ports and all), checked by test_docs_outputs.
        text = re.sub(
            r"<!-- output:.*?<!-- /output:[^>]*-->",
            lambda m: "\n" * m.group(0).count("\n"),
            text,
            flags=re.DOTALL,
        )
        for line_no, line in enumerate(text.splitlines(), 1):
            yield f"{rel}:{line_no}", line


def _urls() -> list[tuple[str, int, str]]:
    """Literal http://127.0.0.1:PORT URLs, as (where, port, path)."""
    return [
        (where, int(m.group(1)), (m.group(2) or "/").split("?")[0])
        for where, line in _doc_lines()
        for m in URL_RE.finditer(line)
    ]


def _labctl_urls() -> list[tuple[str, str, str | None, str]]:
    """`labctl url SERVICE[.PORT]` uses, as (where, service, port name or None, path)."""
    return [
        (where, m.group(1), m.group(2), (m.group(3) or "/").split("?")[0])
        for where, line in _doc_lines()
        for m in LABCTL_URL_RE.finditer(line)
    ]


def test_labctl_url_names_exist_in_the_lab_model():
    services = load_model(docsmd.REPO).services
    uses = _labctl_urls()
    assert len(uses) >= 30, "commands should use `$(labctl url SERVICE.PORT)`, not default ports"
    wrong = []
    for where, service, port, _ in uses:
        if service not in services:
            wrong.append(f"{where}: no service {service!r} (services: {', '.join(services)})")
        elif port is not None and port not in services[service].ports:
            wrong.append(
                f"{where}: {service} has no port {port!r} (ports: {', '.join(services[service].ports)})"
            )
    assert not wrong, "docs name `labctl url` targets the lab does not define:\n" + "\n".join(wrong)


def test_commands_do_not_hard_code_default_ports():
    """Outside transcripts and tables, a command a student runs must find the port of *their* lab."""
    wrong = [
        f"{where}: {line.strip()[:100]}"
        for where, line in _doc_lines()
        if re.search(r"\bcurl\b[^|]*http://(127\.0\.0\.1|localhost):\d+", line)
    ]
    assert not wrong, "use `$(labctl url SERVICE.PORT)` instead of a fixed port:\n" + "\n".join(wrong)


def test_docs_use_only_the_lab_s_ports():
    ports = {p.host for svc in load_model(docsmd.REPO).services.values() for p in svc.ports.values()}
    urls = _urls()
    wrong = [f"{where}: port {port}" for where, port, _ in urls if port not in ports | OTHER_PORTS]
    assert not wrong, "docs use ports the lab does not define:\n" + "\n".join(wrong)


def test_proxy_admin_paths_exist_in_the_openapi_document():
    model = load_model(docsmd.REPO)
    admin = model.services["proxy"].ports["admin"].host
    doc = json.loads((docsmd.REPO / "labctl" / "proxy" / "inspect" / "openapi.json").read_text())
    patterns = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in doc["paths"]]
    on_admin = [(where, path) for where, port, path in _urls() if port == admin]
    on_admin += [
        (where, path)
        for where, service, port, path in _labctl_urls()
        if service == "proxy" and port == "admin"
    ]
    assert len(on_admin) >= 10, "the docs should show the proxy's API"
    missing = [
        f"{where}: {path}"
        for where, path in on_admin
        if not any(p.match(path.rstrip("/") or "/") for p in patterns)
    ]
    assert not missing, "docs name proxy API paths the proxy does not serve:\n" + "\n".join(missing)
