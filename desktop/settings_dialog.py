"""Settings: engine ID, port, owners, shared folders, data folder, web GUI URL, tunnel, start at
login.

The dialog only collects and validates; the app applies a saved result (restarting the engine
when the port or the engine ID changed, the tunnel when its settings changed). Its fields sit
in a scroll area and the dialog never grows past the screen, so Save stays reachable on a small
or highly scaled screen (1280×800 at 200 % is 640×400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QEvent, QRect, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QFrame,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from engine.auth.frame_auth import ADDRESS_RE
from desktop.owners_editor import OwnersEditor
from desktop.refused import Refusal
from desktop.style import error_colour

COPIED_FEEDBACK_MS = 1500


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


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


class SettingsDialog(QDialog):
    saved = Signal(object)  # SettingsValues

    def __init__(self, values: SettingsValues, *, secrets_note: str, tunnel_note: str,
                 folders_text: str, show_folders: Callable[[], None],
                 new_engine_id: Callable[[], str], data_dir: str = "",
                 choose_data_dir: Callable[[], object] | None = None,
                 refused: list[Refusal] = (), parent: QWidget | None = None) -> None:  # type: ignore[assignment]
        super().__init__(parent)
        self.setWindowTitle("Settings")  # Qt adds "— Flowork"
        self.setModal(False)
        self._new_engine_id = new_engine_id
        self.confirm: QMessageBox | None = None
        form = QFormLayout()

        self.engine_id = QLineEdit(values.engine_id)
        self.engine_id.setReadOnly(True)
        self.engine_id.setMinimumWidth(300)  # the whole ID visible
        self.copy_id_button = QPushButton("&Copy")
        self.regenerate_button = QPushButton("Re&generate…")
        # the buttons under the ID, not beside it: the dialog stays narrow enough for a small
        # or highly scaled screen without a sideways scroll bar
        buttons_row = QHBoxLayout()
        buttons_row.addStretch(1)
        buttons_row.addWidget(self.copy_id_button)
        buttons_row.addWidget(self.regenerate_button)
        row = QVBoxLayout()
        row.addWidget(self.engine_id)
        row.addLayout(buttons_row)
        label = QLabel("&Engine ID:")
        label.setBuddy(self.engine_id)
        form.addRow(label, row)
        self.copy_id_button.clicked.connect(self._copy_id)
        self.regenerate_button.clicked.connect(self._confirm_regenerate)

        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("any free port")  # 0: for tests and throwaway engines
        self.port.setValue(values.port)
        form.addRow("&Port:", self.port)

        self.owners = OwnersEditor(values.owners, list(refused))
        label = QLabel("&Owners:")
        label.setBuddy(self.owners.new_owner)
        form.addRow(label, self.owners)

        self.folders_label = _wrapped(folders_text)
        folders_button = QPushButton("Shared &folders…")
        folders_button.clicked.connect(show_folders)
        row = QHBoxLayout()
        row.addWidget(self.folders_label, 1)
        row.addWidget(folders_button)
        form.addRow("Shared folders:", row)

        self.data_dir_field = QLineEdit(data_dir)  # a long path scrolls here, never wraps
        self.data_dir_field.setReadOnly(True)
        self.data_dir_field.setCursorPosition(0)
        self.data_dir_button = QPushButton("C&hoose…")
        self.data_dir_button.setToolTip("The engine restarts with the data in the folder you "
                                        "choose; nothing is moved")
        self.data_dir_button.setEnabled(choose_data_dir is not None)
        if choose_data_dir is not None:
            self.data_dir_button.clicked.connect(lambda: choose_data_dir())
        row = QHBoxLayout()
        row.addWidget(self.data_dir_field, 1)
        row.addWidget(self.data_dir_button)
        form.addRow("Data folder:", row)

        self.gui_url = QLineEdit(values.gui_url)
        form.addRow("Web GUI &URL:", self.gui_url)

        self.tunnel_token = QLineEdit(values.tunnel_token)
        self.tunnel_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.tunnel_token.setPlaceholderText("Cloudflare tunnel token (optional)")
        form.addRow("Tunnel &token:", self.tunnel_token)
        self.tunnel_hostname = QLineEdit(values.tunnel_hostname)
        self.tunnel_hostname.setPlaceholderText("engine.example.com")
        form.addRow("Tunnel host&name:", self.tunnel_hostname)
        self.tunnel_note = _wrapped(f"Tunnel: {tunnel_note}")
        self.tunnel_note.setOpenExternalLinks(True)

        self.start_at_login = QCheckBox("&Start Flowork when I log in")
        self.start_at_login.setChecked(values.start_at_login)
        form.addRow("", self.start_at_login)

        self.secrets_note = _wrapped(f"Secrets: {secrets_note}")

        content = QWidget()
        inner = QVBoxLayout(content)
        inner.addLayout(form)
        # long, wrapped notes below the form: wrapped labels inside form rows upset its heights
        inner.addWidget(self.tunnel_note)
        inner.addWidget(self.secrets_note)
        inner.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(content)

        self.error = _wrapped("")
        self.owners.problem.connect(self.error.setText)
        self._colour_error()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        buttons.accepted.connect(self.try_save)
        buttons.rejected.connect(self.hide)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.error)  # always visible, with the buttons, outside the scroll area
        layout.addWidget(buttons)

    # -- fitting the screen, colours -----------------------------------------------------------

    def setVisible(self, visible: bool) -> None:
        # Sized before the window is mapped: resizing in showEvent let the window manager see
        # (and place) the oversized window first.
        if visible and not self.isVisible():
            self.fit_to_screen()
        super().setVisible(visible)

    def fit_to_screen(self) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        self.fit_to(screen.availableGeometry())

    def fit_to(self, area: QRect) -> None:
        """As large as the content wants, but never larger than the screen's free area."""
        content = self.scroll.widget().sizeHint()
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        chrome = self.sizeHint().height() - self.scroll.sizeHint().height()
        width = min(content.width() + bar + 24, area.width() - 16)
        height = min(content.height() + chrome + 8, area.height() - 48)
        self.resize(max(width, 200), max(height, 160))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._colour_error()

    def _colour_error(self) -> None:
        self.error.setStyleSheet(f"color: {error_colour(self.palette()).name()}")

    # -- values --------------------------------------------------------------------------------

    def values(self) -> SettingsValues:
        return SettingsValues(engine_id=self.engine_id.text(), port=self.port.value(),
                              owners=self.owners.owners(),
                              gui_url=self.gui_url.text().strip(),
                              tunnel_token=self.tunnel_token.text().strip(),
                              tunnel_hostname=self.tunnel_hostname.text().strip(),
                              start_at_login=self.start_at_login.isChecked())

    def try_save(self) -> bool:
        typed = self.owners.new_owner.text().strip()
        if typed and not self.owners.add(typed):  # an address typed but not yet added
            return False
        self.owners.new_owner.clear()
        values = self.values()
        problem = validate(values)
        if problem:
            self.error.setText(problem)
            return False
        self.error.clear()
        self.saved.emit(values)
        self.hide()
        return True

    def set_data_dir(self, text: str) -> None:
        self.data_dir_field.setText(text)

    def _copy_id(self) -> None:
        QGuiApplication.clipboard().setText(self.engine_id.text())
        self.copy_id_button.setText("Copied")
        QTimer.singleShot(COPIED_FEEDBACK_MS, self.copy_id_button,
                          lambda: self.copy_id_button.setText("&Copy"))

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
