"""One app per user: a QLockFile says who runs, a QLocalServer lets a second launch ask the
first one to show itself (then the second exits)."""

from __future__ import annotations

import getpass
import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

SHOW = b"show\n"


def instance_name(config_folder: Path) -> str:
    """Short (socket paths are limited) and unique per user and config folder."""
    digest = hashlib.sha256(f"{getpass.getuser()}|{config_folder.resolve()}".encode()).hexdigest()[:16]
    return f"flowork-desktop-{digest}"


class SingleInstance(QObject):
    show_requested = Signal()

    def __init__(self, config_folder: Path) -> None:
        super().__init__()
        self.name = instance_name(config_folder)
        config_folder.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(str(config_folder / "flowork-desktop.lock"))
        self._lock.setStaleLockTime(0)  # a crashed instance's lock is recognised by its pid
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True if this is the first instance (it then listens for later launches)."""
        if not self._lock.tryLock(200):
            if self._lock.error() == QLockFile.LockError.LockFailedError:
                return False
            log.warning("cannot create the lock file (%s); running without the one-instance check",
                        self._lock.error())
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        QLocalServer.removeServer(self.name)  # a socket left behind by a crashed instance
        if not server.listen(self.name):
            log.warning("cannot listen for other launches: %s", server.errorString())
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def ask_first_to_show(self, timeout_ms: int = 3000) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(SHOW)
        ok = socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return ok

    def _on_connection(self) -> None:
        assert self._server is not None
        while (conn := self._server.nextPendingConnection()) is not None:
            conn.readyRead.connect(lambda c=conn: self._read(c))
            conn.disconnected.connect(conn.deleteLater)
            if conn.bytesAvailable():
                self._read(conn)

    def _read(self, conn: QLocalSocket) -> None:
        data = bytes(conn.readAll().data())
        if SHOW.strip() in data:
            log.info("another launch asked this one to show itself")
            self.show_requested.emit()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._lock.unlock()
