"""URLs the docs tell a student to open or curl point at real things: a port the lab model defines,
and on the proxy's admin port a path its OpenAPI document declares."""

from __future__ import annotations

import json
import re

import docsmd

from labctl.model import load_model

URL_RE = re.compile(r"http://127\.0\.0\.1:(\d+)(/[^\s'\"`)|]*)?")
# Ports that are not the lab's own but appear on purpose: the emulator's Prometheus exporter
# (OTEL_METRICS_EXPORTER=prometheus serves :9464).
OTHER_PORTS = {9464}


def _urls() -> list[tuple[str, int, str]]:
    found = []
    for path in docsmd.doc_files():
        rel = str(path.relative_to(docsmd.REPO))
        text = path.read_text(encoding="utf-8")
        # Transcripts are what the tool printed (relay ports and all), checked by test_docs_outputs.
        text = re.sub(r"<!-- output:.*?<!-- /output:[^>]*-->", lambda m: "\n" * m.group(0).count("\n"),
                      text, flags=re.DOTALL)
        for line_no, line in enumerate(text.splitlines(), 1):
            for m in URL_RE.finditer(line):
                found.append((f"{rel}:{line_no}", int(m.group(1)), (m.group(2) or "/").split("?")[0]))
    return found


def test_docs_use_only_the_lab_s_ports():
    ports = {p.host for svc in load_model(docsmd.REPO).services.values() for p in svc.ports.values()}
    urls = _urls()
    assert len(urls) >= 30
    wrong = [f"{where}: port {port}" for where, port, _ in urls if port not in ports | OTHER_PORTS]
    assert not wrong, "docs use ports the lab does not define:\n" + "\n".join(wrong)


def test_proxy_admin_paths_exist_in_the_openapi_document():
    model = load_model(docsmd.REPO)
    admin = model.services["proxy"].ports["admin"].host
    doc = json.loads((docsmd.REPO / "labctl" / "proxy" / "inspect" / "openapi.json").read_text())
    patterns = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in doc["paths"]]
    on_admin = [(where, path) for where, port, path in _urls() if port == admin]
    assert len(on_admin) >= 10, "the docs should show the proxy's API"
    missing = [f"{where}: {path}" for where, path in on_admin
               if not any(p.match(path.rstrip("/") or "/") for p in patterns)]
    assert not missing, "docs name proxy API paths the proxy does not serve:\n" + "\n".join(missing)
