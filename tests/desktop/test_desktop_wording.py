"""Wording and details: titles Qt completes with the app name (never "Flowork: … — Flowork"),
keyboard mnemonics in the menu and Settings, the Linux way to install cloudflared, an error
colour readable on light and dark palettes, a Settings dialog that fits a small screen."""

from __future__ import annotations

import re

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QWidget

from desktop.style import contrast, error_colour
from desktop.tunnel import install_hint
from tests.desktop.conftest import wait_until


def mnemonic(text: str) -> str | None:
    m = re.search(r"&([^&])", text)
    return m.group(1).lower() if m else None


async def test_titles_leave_the_app_name_to_qt(make_app, qapp):
    app = await make_app()
    app.menu.settings.trigger()
    app.menu.folders.trigger()
    app.menu.about.trigger()
    windows = [app.settings_dialog, app.folders_dialog, app.about_dialog]
    for window in windows:
        assert window.isVisible()
        title = window.windowTitle()
        assert "Flowork:" not in title and not title.endswith("Flowork"), title
        assert len(title) <= 24, title  # short: never cut off in a narrow dialog
    assert app.status_window.windowTitle() == "Flowork"


async def test_the_menu_and_settings_have_mnemonics(make_app):
    app = await make_app()
    fixed = [a for a in app.menu.actions() if a.text() and not a.isSeparator()
             and a is not app.menu.header and a not in app.menu.approval_items]
    keys = [mnemonic(a.text()) for a in fixed if a.isVisible()]
    assert None not in keys, [a.text() for a in fixed]
    assert len(keys) == len(set(keys)), keys  # each letter reaches one entry
    app.menu.settings.trigger()
    dialog = app.settings_dialog
    labels = [w for w in dialog.findChildren(QLabel) if "&" in w.text() and w.buddy() is not None]
    assert {mnemonic(label.text()) for label in labels} >= {"e", "p", "o", "u", "t", "n"}
    buttons = [b.text() for b in dialog.findChildren(QWidget) if hasattr(b, "text") and callable(b.text)
               and b.metaObject().className() == "QPushButton"]
    assert all(mnemonic(t) for t in buttons if t not in ("Remove", "Allow", "Save", "Cancel", "")), buttons


def test_linux_is_told_the_debian_way_to_install_cloudflared():
    hint = install_hint("linux")
    assert "sudo apt install cloudflared" in hint and "brew" not in hint and "winget" not in hint
    assert "brew install" in install_hint("darwin") and "winget" in install_hint("win32")


def test_the_error_colour_reads_on_light_and_dark_palettes():
    for window in ("#ffffff", "#efefef", "#2b2b2b", "#121212"):
        palette = QPalette()
        palette.setColor(QPalette.ColorRole.Window, QColor(window))
        assert contrast(error_colour(palette), QColor(window)) >= 4.5, window


async def test_settings_error_follows_a_dark_palette(make_app):
    app = await make_app(start_engine=False)
    app.menu.settings.trigger()
    dialog = app.settings_dialog
    dark = QPalette(dialog.palette())
    dark.setColor(QPalette.ColorRole.Window, QColor("#202020"))
    dark.setColor(QPalette.ColorRole.WindowText, QColor("#e0e0e0"))
    dialog.setPalette(dark)
    colour = QColor(re.search(r"color: (#\w+)", dialog.error.styleSheet()).group(1))
    assert contrast(colour, QColor("#202020")) >= 4.5


async def test_settings_fit_a_1280x800_screen_at_200_percent(make_app):
    app = await make_app(start_engine=False)
    app.menu.settings.trigger()
    dialog = app.settings_dialog
    natural = dialog.sizeHint().height()
    dialog.fit_to(QRect(0, 0, 640, 400))  # what such a screen offers, in Qt's units
    await wait_until(lambda: dialog.height() <= 400, what="the dialog to fit")
    assert natural > 400  # it would not fit without this
    assert dialog.save_button.isVisible()
    bottom = dialog.save_button.mapTo(dialog, dialog.save_button.rect().bottomLeft()).y()
    assert bottom < dialog.height()  # Save is on screen, not below it
    assert dialog.scroll.verticalScrollBar().maximum() > 0  # the fields scroll instead
