"""About Flowork: the version, and the folders a person looks for when something needs
checking (data, logs, settings), each with a button that opens it."""

from __future__ import annotations

import html
import platform
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from desktop.icons import app_icon
from desktop.links import HOME_URL


class AboutDialog(QMessageBox):
    open_folder = Signal(object)  # Path

    def __init__(self, *, version: str, engine_id: str, data_dir: Path, log_dir: Path,
                 config_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About")
        self.setIconPixmap(app_icon().pixmap(64, 64))
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setText(f"<b>Flowork Desktop {html.escape(version)}</b><br>"
                     f"The Flowork Core Engine in your tray. "
                     f"<a href=\"{HOME_URL}\">{HOME_URL.split('//', 1)[1]}</a>")
        rows = [("Engine ID", engine_id), ("Data folder", str(data_dir)), ("Logs", str(log_dir)),
                ("Settings", str(config_dir)),
                ("Built with", f"Python {platform.python_version()}, Qt {pyside_version}")]
        self.setInformativeText("<table>" + "".join(
            f"<tr><td>{html.escape(k)}:&nbsp;</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
            + "</table>")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.data_button = self.addButton("Open &data folder", QMessageBox.ButtonRole.ActionRole)
        self.logs_button = self.addButton("Open &logs folder", QMessageBox.ButtonRole.ActionRole)
        self.addButton(QMessageBox.StandardButton.Close)
        self.data_button.clicked.connect(lambda: self.open_folder.emit(data_dir))
        self.logs_button.clicked.connect(lambda: self.open_folder.emit(log_dir))
        self.setModal(False)
