"""Is a port free, and who holds it: checked before anything starts so a clash names the port and owner."""

from __future__ import annotations

import errno
import socket

import psutil

from labctl.errors import LabError


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: a port in TIME_WAIT is usable by the service, so it must not count as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_owner(port: int) -> str | None:
    """'pid 123 (prometheus)' for the process listening on `port`, when the OS lets us see it."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, PermissionError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            return f"pid {conn.pid} ({name})"
    return None


def check_ports_free(wanted: list[tuple[str, str, int]], stage: str) -> None:
    """wanted: (service, port name, host port). Raises one LabError listing every taken port."""
    taken = []
    for service, name, port in wanted:
        if port_in_use(port):
            owner = port_owner(port)
            taken.append(f"{port} ({service}.{name}) is in use" + (f" by {owner}" if owner else ""))
    if taken:
        raise LabError(
            "port " + "; port ".join(taken),
            "stop the process holding it, or pick other ports: "
            f"`labctl down` then `labctl up {stage} --port-offset 100` (or --free-ports)",
        )
