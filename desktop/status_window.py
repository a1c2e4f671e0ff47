"""A small status window: the app's face where the desktop has no system tray (GNOME without
the AppIndicator extension), and what a second launch or a tray click shows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop.icons import app_icon, state_image
from desktop.tray import StatusView, TrayMenu


class StatusWindow(QWidget):
    def __init__(self, menu: TrayMenu, *, quit_on_close: bool) -> None:
        super().__init__()
        self.menu = menu
        self.quit_on_close = quit_on_close
        self.setWindowTitle("Flowork")
        self.setWindowIcon(app_icon())
        self.icon = QLabel()
        self.headline = QLabel("Flowork")
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.headline.setFont(font)
        self.details = QLabel()
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.icon)
        text = QVBoxLayout()
        text.addWidget(self.headline)
        text.addWidget(self.details)
        top.addLayout(text, 1)
        buttons = QHBoxLayout()
        for action in (menu.start, menu.stop, menu.restart, menu.open_gui):
            buttons.addWidget(self._button(action.text(), action.trigger, action))
        self.menu_button = QPushButton("More…")
        self.menu_button.setMenu(menu)
        buttons.addWidget(self.menu_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.note)

    def _button(self, text: str, slot: object, action: object) -> QPushButton:
        button = QPushButton(text.replace(" engine", ""))
        button.clicked.connect(slot)  # type: ignore[arg-type]
        action.changed.connect(lambda b=button, a=action: b.setEnabled(a.isEnabled()))  # type: ignore[attr-defined]
        button.setEnabled(action.isEnabled())  # type: ignore[attr-defined]
        return button

    def update_view(self, view: StatusView) -> None:
        self.icon.setPixmap(QPixmap.fromImage(state_image(view.state)))
        self.headline.setText(f"Flowork: {view.headline}")
        self.details.setText(view.tooltip().split("\n", 1)[1] if "\n" in view.tooltip() else "")
        self.note.setText("Your desktop has no system tray, so Flowork shows this window. "
                          "Closing it quits Flowork." if self.quit_on_close else
                          "Flowork is in the system tray; closing this window keeps it running.")

    def bring_up(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.quit_on_close:
            self.menu.quit.trigger()
            event.ignore()
        else:
            event.accept()
