"""A small status window: the app's face where the desktop has no system tray (GNOME without
the AppIndicator extension), and what a second launch, a tray click or the menu's header shows.

It always fits its content (the layout fixes the window's size to what it holds), so a new
line or a longer note never gets cut off; the address is one unbroken, selectable line.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QPixmap
from PySide6.QtWidgets import (QFormLayout, QHBoxLayout, QLabel, QLayout, QPushButton,
                               QVBoxLayout, QWidget)

from desktop.icons import app_icon, state_image
from desktop.tray import StatusView, TrayMenu

NOTE_WIDTH = 440  # wrapped notes get a fixed width, so their height is known before layout


class StatusWindow(QWidget):
    def __init__(self, menu: TrayMenu, *, quit_on_close: bool) -> None:
        super().__init__()
        self.menu = menu
        self.quit_on_close = quit_on_close
        self.setWindowTitle("Flowork")  # the app's own window: Qt adds no "— Flowork" to this
        self.setWindowIcon(app_icon())
        self.icon = QLabel()
        self.headline = QLabel("Flowork")
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.headline.setFont(font)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.values: dict[str, QLabel] = {}
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setFixedWidth(NOTE_WIDTH)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text = QVBoxLayout()
        text.addWidget(self.headline)
        text.addLayout(self.form)
        text.addWidget(self.notes)
        top = QHBoxLayout()
        top.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addLayout(text, 1)
        buttons = QHBoxLayout()
        for action in (menu.start, menu.stop, menu.restart, menu.open_gui):
            buttons.addWidget(self._button(action))
        self.menu_button = QPushButton("&More")
        self.menu_button.setMenu(menu)
        buttons.addWidget(self.menu_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)
        layout.addLayout(top)
        layout.addLayout(buttons)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setFixedWidth(NOTE_WIDTH + 80)
        layout.addWidget(self.note)

    def _button(self, action: QAction) -> QPushButton:
        return ActionButton(action, self)

    def details_text(self) -> str:
        """Everything the window shows besides the headline, as plain text (tests, copying)."""
        rows = [f"{label} {value.text()}" for label, value in self.values.items()]
        return "\n".join(rows + ([self.notes.text()] if self.notes.text() else []))

    def update_view(self, view: StatusView) -> None:
        self.icon.setPixmap(QPixmap.fromImage(state_image(view.state)))
        self.headline.setText(view.header())
        rows = view.rows()
        if [label for label, _v in rows] != list(self.values):
            while self.form.rowCount():
                self.form.removeRow(0)
            self.values = {}
            for label, _value in rows:
                value = QLabel()
                value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                self.form.addRow(label, value)
                self.values[label] = value
        for label, value in rows:
            self.values[label].setText(value)
        notes = list(view.notes)
        if view.approvals:
            notes.insert(0, f"{len(view.approvals)} approval(s) waiting: see More.")
        self.notes.setText("\n".join(notes))
        # A wrapped label's size hint guesses a width; at its fixed width its height is exact.
        if notes:
            self.notes.setFixedHeight(_wrapped_height(self.notes, NOTE_WIDTH))
        self.notes.setVisible(bool(notes))
        self.note.setText("Your desktop has no system tray, so Flowork shows this window. "
                          "Closing it quits Flowork." if self.quit_on_close else
                          "Flowork is in the system tray; closing this window keeps it running.")
        self.note.setFixedHeight(_wrapped_height(self.note, NOTE_WIDTH + 80))

    def bring_up(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and not self.quit_on_close:
            self.close()  # like a dialog; without a tray, Escape must not quit Flowork
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.quit_on_close:
            self.menu.quit.trigger()
            event.ignore()
        else:
            event.accept()


def _wrapped_height(label: QLabel, width: int) -> int:
    """The height `label`'s text takes wrapped at `width` (a wrapped label's own size hint
    guesses a width, and its heightForWidth can lag behind a new text)."""
    box = label.fontMetrics().boundingRect(QRect(0, 0, width, 1 << 20), Qt.TextFlag.TextWordWrap,
                                           label.text())
    return box.height() + 2 * label.margin()


class ActionButton(QPushButton):
    """A button mirroring a menu action (text, enabled); its slot dies with the button."""

    def __init__(self, action: QAction, parent: QWidget) -> None:
        super().__init__(action.text(), parent)
        self._action = action
        self.clicked.connect(action.trigger)
        action.changed.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        self.setEnabled(self._action.isEnabled())
