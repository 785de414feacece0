"""The real receivers a matrix case (or a test) points the emulator at, each on its own address and ports.

- `Collector`: the lab's own Collector distribution (otelcol-lab) with collector-configs/base.yaml, plus the
  auth overlay and a generated TLS overlay where the case needs them. Observed through its internal
  metrics (accepted/refused points and records by transport) and its Prometheus exporter.
- `Proxy`: the lab's logging proxy (`python -m labctl proxy serve`), observed through /api/stats.
- `Prometheus`: scrapes the emulator's own Prometheus exporter; observed through its query API.
- `BlackHole`: accepts TCP connections and never answers (a receiver that hangs: timeouts).
- `Unreachable`: a listener whose accept queue is full, so new connections get no answer at all (a host that
  drops packets: connect timeouts) — the loopback stand-in for an unreachable host.
Every process logs to a file in its own directory and is stopped (SIGTERM, then SIGKILL) in `stop()`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import requests

from labctl.checks.exposition import Sample, parse
from labctl.errors import LabError
from labctl.poll import poll
from labctl.state import free_port

REPO = Path(__file__).resolve().parents[2]


def wait_http(
    url: str,
    timeout_s: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    verify: bool | str = True,
) -> None:
    last = [""]

    def answered() -> bool:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
            raise LabError(f"process exited ({proc.returncode}) before {url} answered", tail or None)
        try:
            r = requests.get(url, timeout=1, verify=verify)
        except requests.RequestException as exc:
            last[0] = str(exc)
            return False
        last[0] = f"HTTP {r.status_code}"
        return r.status_code < 500

    if not poll(answered, timeout_s, 0.1):
        raise LabError(f"{url} did not answer within {timeout_s:.0f}s: {last[0]}")


class Process:
    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as fh:  # a restarted process keeps its earlier log
            self.proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd or self.workdir,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# --- TLS ------------------------------------------------------------------------------------------------


def make_self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A throwaway certificate for `host` (an IP or a name), valid for one day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


# --- the Collector ----------------------------------------------------------------------------------------


class Collector(Process):
    def __init__(
        self,
        workdir: Path,
        host: str = "127.0.0.1",
        auth_token: str | None = None,
        tls: bool = False,
        binary: Path | None = None,
        extra_configs: list[Path] | None = None,
    ) -> None:
        super().__init__("otelcol", workdir)
        self.extra_configs = list(extra_configs or [])
        self.host = host
        self.grpc_port, self.http_port = free_port(host), free_port(host)
        self.prom_port, self.internal_port, self.health_port = free_port(), free_port(), free_port()
        self.auth_token = auth_token
        self.tls = tls
        self.cert: Path | None = None
        self.binary = binary

    @property
    def grpc_addr(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_addr(self) -> str:
        return f"{self.host}:{self.http_port}"

    def start(self, timeout_s: float = 30) -> Collector:
        from labctl.install import resolve_binary

        binary = self.binary or resolve_binary("otelcol-lab")
        configs = [REPO / "collector-configs" / "base.yaml"]
        env = {
            "LAB_COLLECTOR_OTLP_GRPC_LISTEN": self.grpc_addr,
            "LAB_COLLECTOR_OTLP_HTTP_LISTEN": self.http_addr,
            "LAB_COLLECTOR_PROM_EXPORTER_LISTEN": f"127.0.0.1:{self.prom_port}",
            "LAB_COLLECTOR_INTERNAL_HOST": "127.0.0.1",
            "LAB_COLLECTOR_INTERNAL_PORT": str(self.internal_port),
            "LAB_COLLECTOR_HEALTH_LISTEN": f"127.0.0.1:{self.health_port}",
            "LAB_COLLECTOR_DATA_DIR": str(self.workdir),
        }
        if self.auth_token:
            configs.append(REPO / "collector-configs" / "auth.yaml")
            env["LAB_COLLECTOR_AUTH_TOKEN"] = self.auth_token
        if self.tls:
            # Generated per run, in the case's own directory: the stand-in "remote"/"SaaS" endpoint's TLS.
            self.cert, key = make_self_signed(self.workdir / "tls", self.host)
            overlay = self.workdir / "tls.yaml"
            overlay.write_text(
                "receivers:\n  otlp:\n    protocols:\n"
                f"      grpc:\n        tls:\n          cert_file: {self.cert}\n          key_file: {key}\n"
                f"      http:\n        tls:\n          cert_file: {self.cert}\n          key_file: {key}\n"
            )
            configs.append(overlay)
        configs += self.extra_configs
        argv = [str(binary)]
        for c in configs:
            argv += ["--config", str(c)]
        self.spawn(argv, env)
        assert self.proc is not None
        wait_http(f"http://127.0.0.1:{self.health_port}/", timeout_s, self.proc, self.log)
        return self

    def internal(self) -> list[Sample]:
        return parse(requests.get(f"http://127.0.0.1:{self.internal_port}/metrics", timeout=3).text)

    def exported(self) -> list[Sample]:
        return parse(requests.get(f"http://127.0.0.1:{self.prom_port}/metrics", timeout=3).text)

    def received(self) -> dict[str, dict[str, float]]:
        """Accepted and refused items by signal and transport, from the Collector's own metrics."""
        out: dict[str, dict[str, float]] = {}
        for s in self.internal():
            m = re.match(r"otelcol_receiver_(accepted|refused)_(metric_points|log_records)", s.name)
            if m:
                key = f"{m.group(1)}_{'metrics' if m.group(2) == 'metric_points' else 'logs'}"
                out.setdefault(key, {})
                t = s.labels.get("transport", "?")
                out[key][t] = out[key].get(t, 0) + s.value
        return out


# --- the proxy --------------------------------------------------------------------------------------------


class Proxy(Process):
    def __init__(
        self,
        workdir: Path,
        host: str = "127.0.0.1",
        auth_token: str | None = None,
        upstream: str | None = None,
    ) -> None:
        super().__init__("proxy", workdir)
        self.host = host
        self.grpc_port, self.http_port, self.admin_port = free_port(host), free_port(host), free_port()
        self.auth_token = auth_token
        self.upstream = upstream

    def start(self, timeout_s: float = 30) -> Proxy:
        env = {
            "LAB_PROXY_OTLP_GRPC_LISTEN": f"{self.host}:{self.grpc_port}",
            "LAB_PROXY_OTLP_HTTP_LISTEN": f"{self.host}:{self.http_port}",
            "LAB_PROXY_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "LAB_PROXY_DATA_DIR": str(self.workdir / "data"),
            "LAB_PROXY_AUTH_TOKEN": self.auth_token or "",
            "LAB_PROXY_UPSTREAM": self.upstream or "",
        }
        contract = REPO / "lab" / "contracts" / "claude-code.yaml"
        if contract.exists():
            env["LAB_PROXY_CONTRACT"] = str(contract)
        self.spawn(
            [
                sys.executable,
                "-m",
                "labctl",
                "proxy",
                "serve",
                "--config",
                str(REPO / "lab" / "proxy" / "proxy.yaml"),
            ],
            env,
            cwd=REPO,
        )
        assert self.proc is not None
        wait_http(f"http://127.0.0.1:{self.admin_port}/readyz", timeout_s, self.proc, self.log)
        return self

    def stats(self) -> dict[str, Any]:
        # With a token the admin API demands it too (labctl/proxy/guard.py).
        headers = {"Authorization": f"Bearer {self.auth_token}"} if self.auth_token else {}
        data: dict[str, Any] = requests.get(
            f"http://127.0.0.1:{self.admin_port}/api/stats", timeout=3, headers=headers
        ).json()
        return data


# --- Prometheus -------------------------------------------------------------------------------------------


class Prometheus(Process):
    def __init__(
        self,
        workdir: Path,
        scrape_target: str | None = None,
        interval_s: int = 1,
        otlp_receiver: bool = False,
    ) -> None:
        super().__init__("prometheus", workdir)
        self.port = free_port()
        self.target = scrape_target
        self.interval_s = interval_s
        self.otlp_receiver = otlp_receiver

    @property
    def otlp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/otlp/v1/metrics"

    def start(self, timeout_s: float = 60) -> Prometheus:
        from labctl.install import resolve_binary

        cfg = self.workdir / "prometheus.yml"
        self.workdir.mkdir(parents=True, exist_ok=True)
        text = f"global:\n  scrape_interval: {self.interval_s}s\n  scrape_timeout: {self.interval_s}s\n"
        if self.target:
            text += (
                f"scrape_configs:\n  - job_name: claude-code\n    static_configs:\n"
                f"      - targets: ['{self.target}']\n"
            )
        cfg.write_text(text)
        argv = [
            str(resolve_binary("prometheus")),
            f"--config.file={cfg}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        if self.otlp_receiver:
            argv.append("--web.enable-otlp-receiver")
        self.spawn(argv)
        assert self.proc is not None
        wait_http(f"http://127.0.0.1:{self.port}/-/ready", timeout_s, self.proc, self.log)
        return self

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = requests.get(f"http://127.0.0.1:{self.port}/api/v1/query", params={"query": promql}, timeout=5)
        result: list[dict[str, Any]] = r.json().get("data", {}).get("result", [])
        return result


# --- network stand-ins ------------------------------------------------------------------------------------


class BlackHole:
    """Accepts connections, reads and discards, never answers: every request ends in the client's timeout."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.connections = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> BlackHole:
        self._thread.start()
        return self

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.setblocking(False)
            self._conns.append(conn)
            for c in list(self._conns):
                try:
                    c.recv(65536)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for c in self._conns:
            c.close()
        self.sock.close()


class Unreachable:
    """A listener with a full accept queue: further connection attempts get no answer (like a dead host)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(0)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self._filler: list[socket.socket] = []

    def start(self) -> Unreachable:
        # One connection fills the queue; it is never accepted.
        s = socket.socket()
        s.settimeout(2)
        s.connect((self.host, self.port))
        self._filler.append(s)
        return self

    def stop(self) -> None:
        for s in self._filler:
            s.close()
        self.sock.close()
