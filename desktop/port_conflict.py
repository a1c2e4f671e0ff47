"""A port already in use: say which program holds it, and offer another port or a retry."""

from __future__ import annotations

import logging
import socket

import psutil
from PySide6.QtWidgets import QMessageBox, QWidget

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


class PortConflictDialog(QMessageBox):
    """Non-modal: 'Use another port' or 'Retry' (or close and decide later)."""

    def __init__(self, port: int, holder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Flowork: port in use")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setText(f"Port {port} is already in use by {holder}.")
        self.setInformativeText("The engine cannot listen there. Stop that program and retry, "
                                "or let Flowork use another port (the web GUI then needs the new "
                                "URL: use Open web GUI or Copy WebSocket URL).")
        self.other_port_button = self.addButton("Use another port", QMessageBox.ButtonRole.AcceptRole)
        self.retry_button = self.addButton("Retry", QMessageBox.ButtonRole.ActionRole)
        self.addButton(QMessageBox.StandardButton.Close)
        self.setModal(False)
