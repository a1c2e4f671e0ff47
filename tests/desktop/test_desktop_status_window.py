"""No system tray (GNOME without the extension): a small status window instead, which mirrors
the tray menu's actions; closing it quits. A second launch or a tray click shows it too."""

from __future__ import annotations

from desktop.icons import TrayState
from tests.desktop.conftest import wait_until


async def test_no_tray_shows_the_status_window(make_app, owner, desktop_config):
    app = await make_app(tray=False, hidden=False)
    assert app.tray is None
    window = app.status_window
    assert window.isVisible()
    assert "running" in window.headline.text()
    assert app.engine.url in window.details.text()
    assert "no system tray" in window.note.text()
    stop = next(b for b in window.findChildren(type(window.menu_button)) if b.text() == "Stop")
    stop.click()
    await wait_until(lambda: app.view.state is TrayState.STOPPED, what="stop from the window")
    window.close()  # closing the only window quits: no invisible app left behind
    await wait_until(app.finished.is_set, what="quit")
    assert app.supervisor.engine is None


async def test_with_a_tray_the_window_is_on_demand(make_app):
    app = await make_app(tray=True, hidden=False)
    assert not app.status_window.isVisible()
    app.show_status_window()  # what a tray click and a second launch do
    assert app.status_window.isVisible()
    app.status_window.close()
    assert not app.finished.is_set()


async def test_hidden_start_without_tray_is_minimized_not_invisible(make_app):
    app = await make_app(tray=False, hidden=True)
    assert app.status_window.isMinimized() or app.status_window.isVisible()
