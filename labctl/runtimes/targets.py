"""Prometheus scrape targets (file_sd) and config files, written from the model for either runtime."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from labctl.errors import LabError
from labctl.model import LabModel, Placement

# file_sd file name -> (service, port) it points at. prometheus.yml's jobs read targets/<file>.
SCRAPE_TARGETS: dict[str, tuple[str, str]] = {
    "collector.json": ("collector", "prom_exporter"),
    "collector-internal.json": ("collector", "internal"),
    "proxy.json": ("proxy", "admin"),
    "prometheus.json": ("prometheus", "web"),
    "alertmanager.json": ("alertmanager", "web"),  # prometheus.yml `alerting:`, not a scrape job
}
# Targets of services only some stages run: written empty when the lab does not run them, so
# Prometheus does not try an Alertmanager that is not there.
STAGE_TARGETS = frozenset({"alertmanager.json"})


def relay_for(model: LabModel, service: str, port: str) -> tuple[str, str] | None:
    """The (service, port) that relays scrapes of service.port natively (lab.yaml hops' `native_via`).

    Only Prometheus' own hops count: Grafana's hop to prometheus.web goes through the query relay, but
    Prometheus scraping itself does not."""
    via = model.reach("prometheus", service, port)
    return via if via != (service, port) else None


def write_targets(
    model: LabModel,
    targets_dir: Path,
    addr: Callable[[str, str], str],
    relayed: bool = False,
    running: list[str] | tuple[str, ...] | None = None,
) -> None:
    """addr(service, port) -> "host:port" as Prometheus reaches it (loopback natively, DNS name in docker).

    relayed (native): a target whose hop has `native_via` is scraped through that relay port, with the
    real address as its `instance` label, so series, alerts and dashboards look the same either way.
    running: the stage's services; a STAGE_TARGETS file whose service is not among them is written empty.
    """
    targets_dir.mkdir(parents=True, exist_ok=True)
    for filename, (service, port) in SCRAPE_TARGETS.items():
        svc = model.service(service)
        if filename in STAGE_TARGETS and running is not None and service not in running:
            _write(targets_dir / filename, [])
            continue
        labels = {"service": service, "layer": str(svc.layer)}
        target = addr(service, port)
        via = relay_for(model, service, port) if relayed else None
        if via:
            labels["instance"] = target
            target = addr(*via)
        _write(targets_dir / filename, [{"targets": [target], "labels": labels}])


def _write(path: Path, doc: list[dict[str, object]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)  # atomic: Prometheus never reads half a file


def write_receiver_url(model: LabModel, folder: Path, where: Placement) -> None:
    """Alertmanager's webhook address (`url_file: receiver-url` in lab/alertmanager/alertmanager.yml),
    as Alertmanager reaches the notify-receiver in this runtime (natively: through the notify relay)."""
    folder.mkdir(parents=True, exist_ok=True)
    url = model.resolve("http://{hop_addr:notify-receiver.web}/api/alerts", "alertmanager", where)
    tmp = folder / ".receiver-url.tmp"
    tmp.write_text(url + "\n")
    tmp.replace(folder / "receiver-url")


def install_prometheus_config(model: LabModel, data_dir: Path) -> None:
    """Link prometheus.yml and rules/ into Prometheus's data dir (targets/ is written beside them).

    Links, not copies: Prometheus resolves `rule_files` and `file_sd` paths against the directory of the
    config path it was given (the data dir, where the lab's targets are), while the files it reads are the
    repository's own — so an edit plus `labctl reload prometheus` (or POST /-/reload) re-reads the real
    files, exactly as the docker runtime's bind mounts do."""
    src = model.root / "lab" / "prometheus"
    config = src / "prometheus.yml"
    if not config.is_file():
        raise LabError(f"{config} is missing", "restore lab/prometheus/prometheus.yml from the repository")
    if not (src / "rules").is_dir():
        raise LabError(f"{src / 'rules'} is missing", "restore lab/prometheus/rules/ from the repository")
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, target in (("prometheus.yml", config), ("rules", src / "rules")):
        link = data_dir / name
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)  # a copy made by an older labctl
        link.symlink_to(target.resolve())
