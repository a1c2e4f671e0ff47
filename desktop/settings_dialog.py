"""Settings: engine ID, port, owners, shared folders, web GUI URL, tunnel, start at login.

The dialog only collects and validates; the app applies a saved result (restarting the engine
when the port or the engine ID changed, the tunnel when its settings changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout,
                               QLabel, QLayout, QLineEdit, QMessageBox, QPlainTextEdit, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from engine.auth.frame_auth import ADDRESS_RE


@dataclass(frozen=True)
class SettingsValues:
    engine_id: str
    port: int
    owners: tuple[str, ...]
    gui_url: str
    tunnel_token: str
    tunnel_hostname: str
    start_at_login: bool


def validate(values: SettingsValues) -> str | None:
    """One sentence about the first problem, or None."""
    for owner in values.owners:
        if not ADDRESS_RE.match(owner):
            return f"{owner!r} is not an address (0x followed by 40 hex digits)."
    if not values.gui_url.startswith(("http://", "https://")):
        return "The web GUI URL must start with https:// (or http://)."
    host = values.tunnel_hostname
    if host and ("/" in host or " " in host or ":" in host):
        return "The tunnel hostname is a bare name like engine.example.com (no https://, no path)."
    if values.tunnel_hostname and not values.tunnel_token:
        return "A tunnel hostname needs the tunnel token too."
    return None


class SettingsDialog(QDialog):
    saved = Signal(object)  # SettingsValues

    def __init__(self, values: SettingsValues, *, secrets_note: str, tunnel_note: str,
                 folders_text: str, show_folders: Callable[[], None],
                 new_engine_id: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Flowork: settings")
        self.setModal(False)
        self._new_engine_id = new_engine_id
        self.confirm: QMessageBox | None = None
        form = QFormLayout()

        self.engine_id = QLineEdit(values.engine_id)
        self.engine_id.setReadOnly(True)
        self.copy_id_button = QPushButton("Copy")
        self.regenerate_button = QPushButton("Regenerate…")
        row = QHBoxLayout()
        row.addWidget(self.engine_id, 1)
        row.addWidget(self.copy_id_button)
        row.addWidget(self.regenerate_button)
        form.addRow("Engine ID:", row)
        self.copy_id_button.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.engine_id.text()))
        self.regenerate_button.clicked.connect(self._confirm_regenerate)

        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("any free port")  # 0: for tests and throwaway engines
        self.port.setValue(values.port)
        form.addRow("Port:", self.port)

        self.owners = QPlainTextEdit("\n".join(values.owners))
        self.owners.setPlaceholderText("0x… one address per line (empty: ask when a web GUI connects)")
        self.owners.setMinimumHeight(64)
        self.owners.setMaximumHeight(96)
        form.addRow("Allowed owners:", self.owners)

        self.folders_label = QLabel(folders_text)
        self.folders_label.setWordWrap(True)
        folders_button = QPushButton("Shared folders…")
        folders_button.clicked.connect(show_folders)
        row = QHBoxLayout()
        row.addWidget(self.folders_label, 1)
        row.addWidget(folders_button)
        form.addRow("Shared folders:", row)

        self.gui_url = QLineEdit(values.gui_url)
        form.addRow("Web GUI URL:", self.gui_url)

        self.tunnel_token = QLineEdit(values.tunnel_token)
        self.tunnel_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.tunnel_token.setPlaceholderText("Cloudflare tunnel token (optional)")
        form.addRow("Tunnel token:", self.tunnel_token)
        self.tunnel_hostname = QLineEdit(values.tunnel_hostname)
        self.tunnel_hostname.setPlaceholderText("engine.example.com")
        form.addRow("Tunnel hostname:", self.tunnel_hostname)
        self.tunnel_note = QLabel(f"Tunnel: {tunnel_note}")
        self.tunnel_note.setWordWrap(True)
        self.tunnel_note.setOpenExternalLinks(True)

        self.start_at_login = QCheckBox("Start Flowork when I log in")
        self.start_at_login.setChecked(values.start_at_login)
        form.addRow("", self.start_at_login)

        self.secrets_note = QLabel(f"Secrets: {secrets_note}")
        self.secrets_note.setWordWrap(True)

        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        buttons.accepted.connect(self.try_save)
        buttons.rejected.connect(self.hide)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addLayout(form)
        # long, wrapped notes below the form: wrapped labels inside form rows upset its heights
        layout.addWidget(self.tunnel_note)
        layout.addWidget(self.secrets_note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.engine_id.setMinimumWidth(300)  # the whole ID visible
        self.owners.setMinimumWidth(360)     # a whole address per line

    def values(self) -> SettingsValues:
        owners = tuple(dict.fromkeys(line.strip() for line in self.owners.toPlainText().splitlines()
                                     if line.strip()))
        return SettingsValues(engine_id=self.engine_id.text(), port=self.port.value(), owners=owners,
                              gui_url=self.gui_url.text().strip(),
                              tunnel_token=self.tunnel_token.text().strip(),
                              tunnel_hostname=self.tunnel_hostname.text().strip(),
                              start_at_login=self.start_at_login.isChecked())

    def try_save(self) -> bool:
        values = self.values()
        problem = validate(values)
        if problem:
            self.error.setText(problem)
            return False
        self.error.clear()
        self.saved.emit(values)
        self.hide()
        return True

    def _confirm_regenerate(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Regenerate the engine ID?",
                          "A new engine ID disconnects every web GUI using the current one; "
                          "each must be given the new URL. Regenerate it?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setModal(False)
        box.buttonClicked.connect(
            lambda b: self.engine_id.setText(self._new_engine_id())
            if box.standardButton(b) == QMessageBox.StandardButton.Yes else None)
        self.confirm = box
        box.show()
