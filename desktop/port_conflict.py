"""A port already in use: which program holds it, and a free port near it to offer instead."""

from __future__ import annotations

import logging
import socket

import psutil

log = logging.getLogger(__name__)


def port_holder(port: int) -> str:
    """'name (pid N)' of the process listening on the port, or a plain description."""
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        connections = []
    for conn in connections:
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            try:
                proc = psutil.Process(conn.pid)
                return f"{proc.name()} (pid {conn.pid})"
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return f"process {conn.pid}"
    return "another program (its name is not visible to Flowork)"


def free_port_near(port: int, host: str = "127.0.0.1", tries: int = 50) -> int:
    """The first port after `port` that can be bound right now (a stable, memorable choice)."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
