"""The tray menu and the status window as a person reads them: a short bold header at full
contrast, Flowork's own CPU and memory (the machine's only where labelled so), one way to start,
a status window that fits all it says, and About / Help / Check for updates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import shiboken6
from PySide6.QtWidgets import QLabel

from desktop.status_window import StatusWindow
from desktop.links import HELP_URL, RELEASES_URL
from desktop.supervisor import State
from desktop.tray import format_bytes
from engine import __version__
from tests.desktop.conftest import wait_until


async def test_flowork_shows_its_own_cpu_and_memory(make_app):
    app = await make_app()
    status = app.last_status
    own = f"memory {format_bytes(status['engineMemoryBytes'])}"
    tooltip = app.tray.icon.toolTip()
    assert "Flowork uses CPU" in tooltip and own in tooltip
    assert f"{status['memoryPercent']:.0f} %" not in tooltip  # the machine's figure: not here
    rows = dict((label, value.text()) for label, value in app.status_window.values.items())
    assert own in rows["Flowork uses:"]
    assert "used" in rows["This computer:"]  # the machine's, labelled so


async def test_the_menu_stays_narrow_with_a_long_error(make_app, desktop_config, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    desktop_config.data_dir = blocker / ("a-very-long-folder-name-" * 8)
    app = await make_app()
    assert app.supervisor.state is State.ERROR
    assert app.menu.sizeHint().width() < 420, app.menu.sizeHint()
    assert all(len(a.text()) < 60 for a in app.menu.actions())
    assert app.supervisor.error in app.problem_dialog.detailedText()  # the long text is here
    assert app.menu.start.isEnabled() and not app.menu.restart.isEnabled()


def clipped(window) -> list[str]:
    """Labels the window cuts off (shorter than their text needs, or below its bottom edge)."""
    cut = []
    for label in window.findChildren(QLabel):
        if label.isVisible():
            bottom = label.mapTo(window, label.rect().bottomLeft()).y()
            needed = label.heightForWidth(label.width()) if label.wordWrap() else label.sizeHint().height()
            if bottom >= window.height() or label.height() < needed:
                cut.append(label.text())
    return cut


async def test_the_status_window_fits_its_content(make_app):
    app = await make_app()
    window = StatusWindow(app.menu, quit_on_close=False)  # a view of our own, not the app's
    try:
        window.update_view(app.view)
        window.show()
        address = window.values["Address:"]
        assert address.text() == app.engine.url and not address.wordWrap()  # one unbroken line
        await wait_until(lambda: not clipped(window), what="the window to fit")
        height = window.height()
        long_note = ("A long note that wraps over several lines, to see that the window grows to "
                     "hold it instead of cutting off its last lines. ") * 4
        window.update_view(replace(app.view, notes=(long_note, "And one more line.")))
        await wait_until(lambda: not clipped(window) and window.height() > height,
                         what=f"the window to grow; cut off: {clipped(window)}")
        window.update_view(replace(app.view, notes=("One line.",)))
        await wait_until(lambda: not clipped(window) and window.height() < height + 30,
                         what="the window to shrink back to its content")
        assert window.notes.height() <= window.notes.fontMetrics().lineSpacing() + 4
    finally:
        shiboken6.delete(window)


async def test_about_help_and_updates_open_only_when_asked(make_app, opened, desktop_config):
    app = await make_app()
    assert opened.urls == []  # nothing fetched or opened on its own
    app.menu.about.trigger()
    about = app.about_dialog
    assert about.isVisible() and about.windowTitle() == "About"
    text = about.text()
    assert __version__ in text and str(desktop_config.data_dir) in text and str(desktop_config.log_dir) in text
    about.data_button.click()
    await wait_until(lambda: opened.urls == [Path(desktop_config.data_dir).as_uri()])
    app.menu.help.trigger()
    await wait_until(lambda: len(opened.urls) == 2)
    app.menu.updates.trigger()
    await wait_until(lambda: len(opened.urls) == 3)
    assert opened.urls[1:] == [HELP_URL, RELEASES_URL]
