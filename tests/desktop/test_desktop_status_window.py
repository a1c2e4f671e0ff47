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
    assert app.engine.url in window.details_text()
    assert "no system tray" in window.note.text()
    stop = next(b for b in window.findChildren(type(window.menu_button)) if b.text() == "S&top engine")
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


async def test_a_tray_that_appears_later_is_moved_into(make_app):
    """The login race: the panel's tray comes up after Flowork. Flowork keeps looking and moves
    into it; the status window then no longer quits Flowork when closed."""
    available = [False]
    app = await make_app(tray=None, hidden=False, tray_available=lambda: available[0],
                         tray_watch_s=0.05)
    assert app.tray is None and app.status_window.isVisible()
    assert "Closing it quits Flowork" in app.status_window.note.text()
    available[0] = True
    await wait_until(lambda: app.tray is not None, what="the move into the tray")
    assert app.tray.icon.isVisible() and app.tray.state is TrayState.IDLE
    assert "running" in app.tray.icon.toolTip()
    assert not app.tray_watch.isActive()
    assert "keeps it running" in app.status_window.note.text()
    app.status_window.close()
    assert not app.finished.is_set() and app.supervisor.engine is not None


async def test_a_hidden_start_without_tray_moves_into_a_late_tray_and_hides_the_window(make_app):
    available = [False]
    app = await make_app(tray=None, hidden=True, tray_available=lambda: available[0],
                         tray_watch_s=0.05)
    available[0] = True
    await wait_until(lambda: app.tray is not None, what="the move into the tray")
    assert not app.status_window.isVisible()


async def test_a_tray_chosen_by_the_caller_is_not_watched_for(make_app):
    app = await make_app(tray=False, tray_available=lambda: True, tray_watch_s=0.05)
    assert not app.tray_watch.isActive() and app.tray is None
