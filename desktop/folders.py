"""Shared folders: picked with the native folder picker (non-blocking), kept in the config, and
exactly what the engine lists for request_drives."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel,
                               QListWidget, QPushButton, QVBoxLayout, QWidget)

log = logging.getLogger(__name__)


class SharedFolders(QObject):
    """The list of shared folders; `apply` persists it and hands it to the engine."""

    changed = Signal()

    def __init__(self, roots: tuple[Path, ...], apply: Callable[[tuple[Path, ...]], None]) -> None:
        super().__init__()
        self.roots = roots
        self._apply = apply
        self.picker: QFileDialog | None = None

    def add(self, folder: Path) -> None:
        folder = folder.expanduser().resolve()
        if not folder.is_dir():
            log.warning("not sharing %s: it is not a folder", folder)
            return
        if folder in self.roots:
            return
        self.set(self.roots + (folder,))

    def remove(self, folder: Path) -> None:
        self.set(tuple(r for r in self.roots if r != folder))

    def set(self, roots: tuple[Path, ...]) -> None:
        self.roots = tuple(dict.fromkeys(roots))
        self._apply(self.roots)
        log.info("shared folders: %s", ", ".join(map(str, self.roots)) or "none")
        self.changed.emit()

    def pick(self, parent: QWidget | None = None) -> QFileDialog:
        """Open the native folder picker without blocking; a chosen folder is shared."""
        if self.picker is not None and self.picker.isVisible():
            self.picker.raise_()
            return self.picker
        self.picker = folder_picker("Share a folder with Flowork", self.add, parent)
        return self.picker


def folder_picker(title: str, chosen: Callable[[Path], object], parent: QWidget | None = None) -> QFileDialog:
    """The native folder picker, opened without blocking; `chosen(folder)` when one is picked."""
    picker = QFileDialog(parent, title, str(Path.home()))
    picker.setFileMode(QFileDialog.FileMode.Directory)
    picker.setOption(QFileDialog.Option.ShowDirsOnly, True)
    picker.fileSelected.connect(lambda path: chosen(Path(path)))
    picker.open()
    return picker


class SharedFoldersDialog(QDialog):
    def __init__(self, folders: SharedFolders, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folders = folders
        self.setWindowTitle("Shared folders")  # Qt adds "— Flowork"
        self.setModal(False)
        layout = QVBoxLayout(self)
        intro = QLabel("The web GUI can browse only these folders (and what is inside them).")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.list = QListWidget()
        layout.addWidget(self.list)
        row = QHBoxLayout()
        self.add_button = QPushButton("&Add…")
        self.remove_button = QPushButton("&Remove")
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        layout.addLayout(row)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.hide)
        layout.addWidget(close)
        self.add_button.clicked.connect(lambda: self.folders.pick(self))
        self.remove_button.clicked.connect(self._remove_selected)
        folders.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for root in self.folders.roots:
            self.list.addItem(str(root))
        self.remove_button.setEnabled(bool(self.folders.roots))

    def _remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.folders.remove(Path(item.text()))
