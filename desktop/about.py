"""About Flowork: the version, and the folders a person looks for when something needs
checking (data, logs, settings), each selectable, with buttons that open them."""

from __future__ import annotations

import html
import platform
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel,
                               QPushButton, QVBoxLayout, QWidget)

from desktop.icons import app_icon
from desktop.links import HOME_URL


class AboutDialog(QDialog):
    open_folder = Signal(object)  # Path

    def __init__(self, *, version: str, engine_id: str, data_dir: Path, log_dir: Path,
                 config_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About")  # Qt adds "— Flowork"
        self.setModal(False)
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(64, 64))
        heading = QLabel(f"<b>Flowork Desktop {html.escape(version)}</b><br>The Flowork Core Engine "
                         f"in your tray. <a href=\"{HOME_URL}\">{HOME_URL.split('//', 1)[1]}</a>")
        heading.setOpenExternalLinks(True)
        self.heading = heading
        form = QFormLayout()
        self.rows: dict[str, QLabel] = {}
        for label, value in (("Engine ID:", engine_id), ("Data folder:", str(data_dir)),
                             ("Logs:", str(log_dir)), ("Settings:", str(config_dir)),
                             ("Built with:", f"Python {platform.python_version()}, Qt {pyside_version}")):
            field = QLabel(value)
            field.setTextFormat(Qt.TextFormat.PlainText)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, field)
            self.rows[label] = field
        text = QVBoxLayout()
        text.addWidget(heading)
        text.addLayout(form)
        top = QHBoxLayout()
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addLayout(text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.data_button = QPushButton("Open &data folder")
        self.logs_button = QPushButton("Open &logs folder")
        buttons.addButton(self.data_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.logs_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.hide)
        self.data_button.clicked.connect(lambda: self.open_folder.emit(data_dir))
        self.logs_button.clicked.connect(lambda: self.open_folder.emit(log_dir))
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)

    def text(self) -> str:
        """Everything it says, as plain text."""
        return "\n".join([self.heading.text(), *(f"{k} {v.text()}" for k, v in self.rows.items())])
