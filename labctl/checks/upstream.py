"""Diagnose the proxy → Collector hop from evidence: resolve, connect, speak OTLP, time it."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass

import grpc
import requests

from labctl.checks.probe import tcp_probe
from labctl.otlp.probe import grpc_export

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROBE_BUDGET_S = 4.5
# A name the resolver has not answered for within this is as unusable to the proxy as an unknown one. In a
# container on an offline machine, Docker's DNS forwards an unknown name to servers that never answer and
# the C resolver retries for 10 s or more: `check` says what it knows after this budget instead.
DNS_BUDGET_S = 2.0


@dataclass
class Diagnosis:
    cause: str
    playbook: str
    evidence: list[str]
    ok: bool = False


def parse_headers(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            out[urllib.parse.unquote(key.strip()).lower()] = urllib.parse.unquote(value.strip())
    return out


def export_probe(
    endpoint: str, protocol: str, headers: dict[str, str], timeout: float = 4.0
) -> tuple[str, float]:
    """One empty OTLP metrics export, as the proxy would send it: (outcome, seconds)."""
    parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    started = time.monotonic()
    if protocol == "grpc":
        code, details = grpc_export(f"{parsed.hostname}:{parsed.port}", headers, timeout=timeout)
        outcome = "OK" if code == grpc.StatusCode.OK else f"{code.name}: {details}"
    else:
        url = endpoint.rstrip("/") + "/v1/metrics"
        try:
            resp = requests.post(
                url, data=b"", timeout=timeout, headers={"Content-Type": "application/x-protobuf", **headers}
            )
            outcome = "OK" if resp.ok else f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            outcome = type(exc).__name__
    return outcome, time.monotonic() - started


def resolve_problem(host: str, port: int, budget: float = DNS_BUDGET_S) -> str | None:
    """None when host resolves within budget; else the resolver's error, or that it did not answer."""
    done: list[str | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, port)
            done.append(None)
        except (socket.gaierror, UnicodeError) as exc:
            done.append(getattr(exc, "strerror", None) or str(exc))

    worker = threading.Thread(target=lookup, daemon=True)  # a lookup cannot be cancelled: left to finish
    worker.start()
    worker.join(budget)
    return done[0] if done else f"no answer within {budget:g} s"


def diagnose(
    endpoint: str, protocol: str, headers: dict[str, str], collector_ports: dict[str, int], slow_ms: float
) -> Diagnosis:
    """Why data does not get from the proxy to the Collector, probing the proxy's own upstream.

    Run where the proxy runs: natively on this host, on Docker inside the proxy's container
    (diagnose_in_container). collector_ports are the Collector's ports as seen from there."""
    parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    host, port = parsed.hostname, parsed.port
    if parsed.scheme not in ("http", "https") or not host or not port:
        return Diagnosis(
            f"the proxy's upstream {endpoint!r} is not a valid http://HOST:PORT URL",
            "upstream-unreachable",
            [f"upstream: {endpoint!r}"],
        )
    evidence = [f"proxy upstream: {endpoint} ({protocol})"]
    unresolved = resolve_problem(host, port)
    if unresolved:
        return Diagnosis(
            f"the upstream host {host!r} does not resolve (unreachable host)",
            "upstream-unreachable",
            [*evidence, f"DNS lookup of {host}: {unresolved}"],
        )
    # A timed probe: the server's first bytes (its HTTP/2 SETTINGS) within PROBE_BUDGET_S tell a slow hop
    # (late, but it answers) from a cut one (never); long enough for a 2 s delay each way, short enough
    # to keep `check` quick.
    started = time.monotonic()
    seen = tcp_probe(host, port, timeout=PROBE_BUDGET_S, payload=H2_PREFACE)
    first_byte_s = time.monotonic() - started
    if seen == "refused":
        # One cause for every way to get here (a wrong port, a cut hop, a stopped Collector): the port
        # alone cannot tell them apart, and the Collector's real ports help with all three.
        # The Collector's own OTLP ports only (not the native relay in front of it, `otlp-relay.*`).
        ports = ", ".join(f"{n}={p}" for n, p in collector_ports.items() if n.startswith("otlp_"))
        listens = f"; the Collector listens on {ports}" if ports else ""
        return Diagnosis(
            f"connection refused: nothing listens on {host}:{port} (a wrong port, a cut hop or "
            f"a stopped Collector){listens}",
            "upstream-unreachable",
            [*evidence, f"TCP connect to {host}:{port}: connection refused"],
        )
    if seen in ("silent", "timeout"):
        return Diagnosis(
            f"connections to {host}:{port} hang and time out: the proxy↔collector hop is "
            "partitioned (packets go nowhere)",
            "upstream-unreachable",
            [
                *evidence,
                f"TCP {host}:{port}: {'connects, then no answer' if seen == 'silent' else 'connect timed out'} within {PROBE_BUDGET_S:g}s",
            ],
        )
    evidence.append(
        f"timed probe: {host}:{port} answers the HTTP/2 preface after {first_byte_s * 1000:.0f} ms"
    )
    # Something answers: speak OTLP the way the proxy does.
    outcome, seconds = export_probe(endpoint, protocol, headers)
    evidence.append(f"empty OTLP export with the proxy's headers: {outcome} in {seconds * 1000:.0f} ms")
    if "UNAUTHENTICATED" in outcome or "HTTP 401" in outcome:
        sent = "a bearer token" if "authorization" in headers else "no token"
        return Diagnosis(
            f"the Collector rejects the proxy's credentials ({outcome.split(':')[0]}); the proxy "
            f"sends {sent}",
            "upstream-auth",
            evidence,
        )
    if "DEADLINE_EXCEEDED" in outcome or outcome in ("ReadTimeout", "Timeout"):
        return Diagnosis(
            f"the hop is slow: an empty export did not finish within {seconds:.0f}s although "
            f"{host}:{port} accepts connections (added latency, or a stalled Collector)",
            "upstream-slow",
            evidence,
        )
    if outcome != "OK":
        other = "http/protobuf" if protocol == "grpc" else "grpc"
        return Diagnosis(
            f"the upstream at {host}:{port} does not speak OTLP over {protocol} ({outcome}); "
            f"it probably expects {other} (protocol mismatch)",
            "upstream-protocol",
            evidence,
        )
    if seconds * 1000 > slow_ms:
        return Diagnosis(
            f"the hop is slow: an empty export takes {seconds * 1000:.0f} ms (more than {slow_ms:.0f} ms)",
            "upstream-slow",
            evidence,
        )
    return Diagnosis("the upstream answers OTLP correctly", "upstream-unreachable", evidence, ok=True)


_IN_CONTAINER = (
    "import json, sys\n"
    "from labctl.checks.upstream import diagnose\n"
    "a = json.load(sys.stdin)\n"
    "print(json.dumps(diagnose(**a).__dict__))\n"
)


def diagnose_in_container(
    container: str,
    client_call: list[str],
    endpoint: str,
    protocol: str,
    headers: dict[str, str],
    collector_ports: dict[str, int],
    slow_ms: float,
) -> Diagnosis:
    """Docker: the proxy reaches the Collector by its compose name on the lab's ingest network, which this
    host can neither resolve nor route to. So the same diagnosis runs inside the proxy's container: the
    proxy's own view of its upstream (DNS, connect, OTLP with its headers). Headers go over stdin."""
    args = {
        "endpoint": endpoint,
        "protocol": protocol,
        "headers": headers,
        "collector_ports": collector_ports,
        "slow_ms": slow_ms,
    }
    try:
        out = subprocess.run(
            [*client_call, "exec", "-i", container, "python", "-c", _IN_CONTAINER],
            input=json.dumps(args),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        out = None
        why = str(exc)
    if out is not None and out.returncode == 0:
        try:
            return Diagnosis(**json.loads(out.stdout.strip().splitlines()[-1]))
        except (ValueError, TypeError, IndexError):
            why = f"unreadable answer {out.stdout[-200:]!r}"
    elif out is not None:
        why = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
    return Diagnosis(
        f"cannot probe the upstream from inside the proxy's container ({why})",
        "upstream-unreachable",
        [f"proxy upstream: {endpoint} ({protocol})", f"docker exec {container}: {why}"],
    )
