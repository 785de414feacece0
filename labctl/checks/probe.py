"""Small HTTP/TCP probes whose errors read like what a student would see (refused, timed out, DNS)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from labctl.lazy import requests


@dataclass
class Reply:
    url: str
    status: int | None
    body: str
    error: str | None
    kind: str | None = None  # refused | timeout | dns | http | other

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def describe(self) -> str:
        if self.error:
            return f"{self.url}: {self.error}"
        return f"{self.url}: HTTP {self.status}"


def classify(exc: BaseException) -> str:
    text = repr(exc).lower()
    if "timed out" in text or "timeout" in text:
        return "timeout"
    if "refused" in text:
        return "refused"
    if (
        "name or service not known" in text
        or "nodename nor servname" in text
        or "failed to resolve" in text
        or "temporary failure in name resolution" in text
        or "name resolution" in text
    ):
        return "dns"
    return "other"


def http_get(url: str, timeout: float = 2.0, **kwargs: Any) -> Reply:
    try:
        resp = requests.get(url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        kind = classify(exc)
        words = {
            "timeout": f"timed out after {timeout:g}s",
            "refused": "connection refused",
            "dns": "host name does not resolve",
        }.get(kind, str(exc))
        return Reply(url, None, "", words, kind)
    return Reply(
        url,
        resp.status_code,
        resp.text,
        None if resp.ok else f"HTTP {resp.status_code}",
        None if resp.ok else "http",
    )


def tcp_probe(host: str, port: int, timeout: float = 1.0, payload: bytes | None = None) -> str:
    """'refused' | 'dns' | 'timeout' (no connect) | 'silent' (connects, never answers) | 'answers' | 'open'."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror:
        return "dns"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return classify(exc)
    with sock:
        if payload is None:
            return "open"
        try:
            sock.sendall(payload)
            sock.settimeout(timeout)
            data = sock.recv(1)
            return "answers" if data else "closed"
        except TimeoutError:
            return "silent"
        except OSError:
            return "closed"


START_MARK = "=== labctl "  # labctl.runtimes.process.spawn writes this line before every start


def since_last_start(log_text: str) -> str:
    """Only the lines of the current (or last) run: older runs' errors are stale evidence."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(START_MARK)]
    return "\n".join(lines[starts[-1] + 1 :] if starts else lines)


def error_lines(log_text: str, keep: int = 2) -> list[str]:
    """The last error-looking lines of a service log's latest run (a killed process leaves none)."""
    log_text = since_last_start(log_text)
    words = ("error", "panic", "fatal", "exception", "refused", "invalid")
    lines = [x.strip() for x in log_text.splitlines() if any(w in x.lower() for w in words)]
    return [x[:300] for x in lines[-keep:]]


def first_byte(url: str, budget: float) -> tuple[str, float]:
    """A timed probe of an HTTP hop: GET the URL and wait up to `budget` seconds for the first byte back.

    Tells a slow hop from a cut one, which a client's own timeout cannot: both end in "deadline
    exceeded" once the delay is above the timeout. Returns ('answers', seconds to the first byte),
    ('silent', budget) when nothing came back in time, or ('refused' | 'dns' | 'timeout' | 'closed', s).
    """
    import time
    import urllib.parse

    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    started = time.monotonic()
    address = resolve(host, port, min(budget, DNS_BUDGET_S))
    if address is None:
        return "dns", time.monotonic() - started
    seen = tcp_probe(address, port, timeout=budget, payload=request)
    return seen, time.monotonic() - started


# A name the resolver has not answered for within this is as unusable as an unknown one: offline, a
# container's resolver forwards an unknown name to servers that never answer, and retries for 10 s or more.
DNS_BUDGET_S = 2.0


def resolve(host: str, port: int, budget: float) -> str | None:
    """host's first address, or None when it does not resolve within budget seconds."""
    import threading

    found: list[str | None] = []

    def lookup() -> None:
        try:
            found.append(str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]))
        except (OSError, UnicodeError):
            found.append(None)

    worker = threading.Thread(target=lookup, daemon=True)  # a lookup cannot be cancelled: left to finish
    worker.start()
    worker.join(budget)
    return found[0] if found else None
