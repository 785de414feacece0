"""Helpers for the config tests: the real binaries, and a real Collector / Prometheus on free ports.

Processes are started in a temp dir and always stopped (terminate, then kill) when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from labctl.errors import LabError
from labctl.install import resolve_binary
from labctl.state import free_port

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


def wait_http(
    url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            detail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(
                f"process exited with {proc.returncode} before {url} answered\n{detail}", pytrace=False
            )
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer 200 within {timeout}s ({last})", pytrace=False)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Collector:
    proc: subprocess.Popen[bytes]
    log: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def url(self, name: str, path: str = "/") -> str:
        return f"http://{self.addr(name)}{path}"


def collector_env(ports: dict[str, int], tmp: Path) -> dict[str, str]:
    return {
        "LAB_COLLECTOR_OTLP_GRPC_LISTEN": f"127.0.0.1:{ports['otlp_grpc']}",
        "LAB_COLLECTOR_OTLP_HTTP_LISTEN": f"127.0.0.1:{ports['otlp_http']}",
        "LAB_COLLECTOR_PROM_EXPORTER_LISTEN": f"127.0.0.1:{ports['prom_exporter']}",
        "LAB_COLLECTOR_INTERNAL_HOST": "127.0.0.1",
        "LAB_COLLECTOR_INTERNAL_PORT": str(ports["internal"]),
        "LAB_COLLECTOR_HEALTH_LISTEN": f"127.0.0.1:{ports['health']}",
        "LAB_COLLECTOR_DATA_DIR": str(tmp),
    }


@contextlib.contextmanager
def running_collector(
    tmp: Path, configs: list[Path], extra_env: dict[str, str] | None = None
) -> Iterator[Collector]:
    ports = {name: free_port() for name in ("otlp_grpc", "otlp_http", "prom_exporter", "internal", "health")}
    env = {**os.environ, **collector_env(ports, tmp), **(extra_env or {})}
    log = tmp / "collector.log"
    args = [str(binary("otelcol-lab"))]
    for config in configs:
        args += ["--config", str(config)]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    col = Collector(proc, log, ports, env)
    try:
        wait_http(col.url("health"), proc=proc, log=log)
        yield col
    finally:
        stop(proc)


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    dir: Path
    port: int

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
    """prometheus.yml and rules/ copied the way the native runtime does (tests/ stays behind)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROMETHEUS_DIR / "prometheus.yml", dest / "prometheus.yml")
    shutil.copytree(PROMETHEUS_DIR / "rules", dest / "rules")
    return dest / "prometheus.yml"


def launch_prometheus(data: Path, targets: dict[str, str]) -> Prometheus:
    """Prometheus with the lab's config in `data` (as the native runtime lays it out), on a free port."""
    config = install_prometheus_dir(data)
    port = free_port()
    write_targets(data / "targets", {"prometheus.json": f"127.0.0.1:{port}", **targets})
    log = data / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(binary("prometheus")),
                f"--config.file={config}",
                f"--storage.tsdb.path={data / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data,
        )
    prom = Prometheus(proc, data, port)
    try:
        wait_http(f"{prom.url}/-/ready", proc=proc, log=log)
    except BaseException:
        stop(proc)
        raise
    return prom


def wait_for(what: str, probe: Callable[[], object], timeout: float = 60.0, interval: float = 1.0) -> object:
    """Poll probe() until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last value: {last!r}", pytrace=False)


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
