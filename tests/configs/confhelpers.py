"""Helpers for the config tests: the real binaries, and a real Collector / Prometheus on free ports.

Processes (labctl.matrix.receivers) are started in a temp dir and always stopped when the test ends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.install import resolve_binary
from labctl.matrix import receivers
from labctl.model import load_model
from labctl.runtimes.targets import install_prometheus_config
from labctl.state import free_port
from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_CONFIGS = REPO / "collector-configs"
PROMETHEUS_DIR = REPO / "lab" / "prometheus"
DASHBOARDS = REPO / "dashboards"


def binary(name: str) -> Path:
    """The real binary, or a failure that says how to get it (the suite installs them first)."""
    try:
        return resolve_binary(name)
    except LabError as exc:
        pytest.fail(f"{exc.message}: {exc.hint} (tests/run-all.sh does this before pytest)", pytrace=False)


class Collector(receivers.Collector):
    """The lab's Collector (base.yaml, plus the auth overlay when given a token), ports by lab.yaml name."""

    def __init__(self, workdir: Path, auth_token: str | None = None) -> None:
        super().__init__(workdir, auth_token=auth_token, binary=binary("otelcol-lab"))

    @property
    def ports(self) -> dict[str, int]:
        return {
            "otlp_grpc": self.grpc_port,
            "otlp_http": self.http_port,
            "prom_exporter": self.prom_port,
            "internal": self.internal_port,
            "health": self.health_port,
        }

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def url(self, name: str, path: str = "/") -> str:
        return f"http://{self.addr(name)}{path}"


@contextlib.contextmanager
def running_collector(tmp: Path, auth_token: str | None = None) -> Iterator[Collector]:
    col = Collector(tmp, auth_token)
    try:
        yield col.start(timeout_s=60)
    finally:
        col.stop()


class Prometheus(receivers.Process):
    def __init__(self, data: Path) -> None:
        super().__init__("prometheus", data)
        self.dir = data
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def write_targets(targets_dir: Path, targets: dict[str, str]) -> None:
    """file_sd files as the runtimes write them: targets/<name>.json -> [{targets: [addr], labels}]."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    for filename, addr in targets.items():
        doc = [{"targets": [addr], "labels": {"service": filename.removesuffix(".json")}}]
        tmp = targets_dir / f".{filename}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.replace(targets_dir / filename)


def install_prometheus_dir(dest: Path) -> Path:
    """prometheus.yml and rules/ laid out by the native runtime's own code."""
    install_prometheus_config(load_model(REPO), dest)
    return dest / "prometheus.yml"


def launch_prometheus(data: Path, targets: dict[str, str]) -> Prometheus:
    """Prometheus with the lab's config in `data` (as the native runtime lays it out), on a free port."""
    config = install_prometheus_dir(data)
    prom = Prometheus(data)
    write_targets(data / "targets", {"prometheus.json": f"127.0.0.1:{prom.port}", **targets})
    prom.spawn(
        [
            str(binary("prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={data / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom.port}",
            "--web.enable-lifecycle",
        ]
    )
    try:
        receivers.wait_http(f"{prom.url}/-/ready", 60, prom.proc, prom.log)
    except BaseException:
        prom.stop()
        raise
    return prom


def wait_text(
    what: str, fetch: Callable[[], str], predicate: Callable[[str], bool], timeout: float = 60.0
) -> str:
    """Fetch text until predicate(text) holds; return that text (fail naming `what` otherwise)."""
    box: list[str] = []

    def probe() -> bool:
        text = fetch()
        box[:] = [text]
        return predicate(text)

    wait_for(what, probe, timeout=timeout, interval=0.5)
    return box[0]
