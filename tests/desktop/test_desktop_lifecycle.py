"""Start, stop and restart from the real tray menu; crash restart and give-up; port conflict."""

from __future__ import annotations

import os
import socket

from desktop.config import DesktopConfig
from desktop.errors import CHOOSE_FOLDER, OTHER_PORT, RESTART, RETRY
from desktop.icons import TrayState
from desktop.supervisor import RestartPolicy, State
from engine.client import EngineClient
from tests.desktop.conftest import wait_until


async def test_menu_start_stop_restart_against_a_signed_client(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    assert app.supervisor.state is State.RUNNING
    assert app.view.state is TrayState.IDLE
    url = app.engine.url
    assert app.menu.header.text() == "Flowork: running" and app.menu.header.font().bold()
    assert app.menu.header.isEnabled()  # full contrast, not a faint disabled item
    assert url.split("/?")[0] in app.tray.icon.toolTip() and "CPU" in app.tray.icon.toolTip()
    assert url in app.status_window.details_text()
    async with await EngineClient.connect(url, owner.key) as client:
        reply = await client.request("request_settings")
        assert reply["type"] == "settings_response"
    assert not app.menu.start.isEnabled() and app.menu.stop.isEnabled()

    app.menu.stop.trigger()
    await wait_until(lambda: app.supervisor.state is State.STOPPED, what="stop")
    assert app.view.state is TrayState.STOPPED
    assert app.menu.start.isEnabled() and not app.menu.stop.isEnabled()
    try:
        async with await EngineClient.connect(url, owner.key):
            raise AssertionError("the stopped engine still accepts connections")
    except OSError:
        pass

    app.menu.start.trigger()
    await wait_until(lambda: app.supervisor.state is State.RUNNING, what="start")
    first = app.engine
    app.menu.restart.trigger()
    await wait_until(lambda: app.engine is not None and app.engine is not first, what="restart")
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"


def break_engine(engine, how: int) -> None:
    """Make one of the engine's essential tasks really end, a different one each time."""
    if how == 0:
        engine.server.serve_task.cancel()  # the server closes: its port is no longer served
    elif how == 1:
        engine.runtime.recorder.task.cancel()
    else:
        engine.runtime.retention.task.cancel()


async def test_a_broken_engine_is_restarted_then_given_up_with_log_lines(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    for attempt in range(3):
        engine = app.engine
        assert engine.running
        break_engine(engine, attempt)  # the engine still says it is running: only its signal tells
        await wait_until(lambda: app.engine is not None and app.engine is not engine,
                         what=f"automatic restart {attempt + 1}")
        assert not engine.running  # the broken one was stopped (port and database freed)
        async with await EngineClient.connect(app.engine.url, owner.key) as client:
            assert (await client.request("request_settings"))["type"] == "settings_response"
    assert app.supervisor.crashes == 3
    engine = app.engine
    break_engine(engine, 1)
    await wait_until(lambda: app.supervisor.state is State.ERROR, what="give-up")
    assert "the history recorder was cancelled" in app.supervisor.error
    assert app.view.state is TrayState.ERROR
    assert "gave up" in app.supervisor.error
    assert app.menu.error_details.isVisible()
    assert app.menu.start.isEnabled() and not app.menu.restart.isEnabled()  # one way to start
    dialog = app.problem_dialog
    assert dialog is not None and dialog.isVisible()
    assert "stopped restarting it" in dialog.text()
    assert "stopped unexpectedly" in dialog.detailedText()  # the last log lines
    dialog.buttons[RESTART].click()  # the dialog's own Restart
    await wait_until(lambda: app.supervisor.state is State.RUNNING, what="restart after give-up")
    assert not dialog.isVisible()


def gui_texts(dialog) -> str:
    return "\n".join([dialog.windowTitle(), dialog.text(), dialog.informativeText(),
                      *(b.text() for b in dialog.buttons.values())])


async def test_an_unusable_data_folder_is_not_retried_and_another_can_be_chosen(make_app, desktop_config, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    desktop_config.data_dir = blocker / "data"
    app = await make_app(start_engine=False, policy=RestartPolicy(base_delay_s=0.01))
    app.menu.start.trigger()
    await wait_until(lambda: app.supervisor.state is State.ERROR, what="the error")
    assert app.supervisor.crashes == 0  # the same start would fail the same way: no retries
    assert "not writable" in app.supervisor.error  # the engine's text, kept for the details
    assert any("not writable" in line for line in app.supervisor.error_log)
    dialog = app.problem_dialog
    assert dialog.isVisible() and "cannot use its data folder" in dialog.text()
    assert str(blocker / "data") in dialog.text() and "not writable" in dialog.detailedText()
    assert "--" not in gui_texts(dialog)  # no command-line advice in the GUI
    assert app.view.headline == "cannot use its data folder"
    assert app.menu.start.isEnabled()

    good = tmp_path / "chosen-data"
    good.mkdir()
    dialog.buttons[CHOOSE_FOLDER].click()
    picker = app.data_dir_picker
    assert picker is not None and picker.isVisible()
    picker.fileSelected.emit(str(good))
    await wait_until(lambda: app.supervisor.state is State.RUNNING, what="start on the chosen folder")
    assert app.engine.config.data_dir == good.resolve()
    assert desktop_config.settings_file.load().data_dir == good.resolve()
    assert (good / "engine.sqlite3").is_file()
    again = DesktopConfig(folder=desktop_config.folder)  # a later launch uses it too
    assert again.data_dir == good.resolve()


async def test_port_in_use_names_the_holder_and_offers_a_named_port(make_app, desktop_config):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        desktop_config.update(port=port)
        app = await make_app()
        assert app.supervisor.state is State.PORT_IN_USE
        assert app.view.state is TrayState.PORT_IN_USE
        await wait_until(lambda: app.problem_dialog is not None and app.problem_dialog.isVisible(),
                         what="port dialog")
        dialog = app.problem_dialog
        assert f"pid {os.getpid()}" in dialog.text()
        assert str(port) in dialog.text()
        assert "--" not in gui_texts(dialog)
        offered = app.port_offer[2]
        assert dialog.buttons[OTHER_PORT].text() == f"Use &port {offered}"
        assert f"Use port {offered}" in dialog.informativeText()
        assert app.supervisor.crashes == 0
        dialog.buttons[RETRY].click()  # still held: the same state again
        await wait_until(lambda: app.supervisor.state is State.PORT_IN_USE and app.problem_dialog.isVisible()
                         and app.problem_dialog is not dialog)
        app.problem_dialog.buttons[OTHER_PORT].click()
        await wait_until(lambda: app.supervisor.state is State.RUNNING, what="start on another port")
        assert app.engine.config.port == offered
        assert desktop_config.settings_file.load().port == offered
    finally:
        holder.close()


async def test_port_in_use_then_retry_once_it_is_free(make_app, desktop_config):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    desktop_config.update(port=port)
    app = await make_app()
    await wait_until(lambda: app.problem_dialog is not None and app.problem_dialog.isVisible())
    holder.close()
    app.problem_dialog.buttons[RETRY].click()
    await wait_until(lambda: app.supervisor.state is State.RUNNING, what="retry")
    assert app.engine.config.port == port


async def test_quit_stops_the_engine(make_app, owner):
    app = await make_app()
    url = app.engine.url
    app.menu.quit.trigger()
    await wait_until(app.finished.is_set, what="quit")
    assert app.supervisor.engine is None
    try:
        async with await EngineClient.connect(url, owner.key):
            raise AssertionError("still listening after Quit")
    except OSError:
        pass


async def test_status_shows_busy_jobs_and_clients_from_the_engine(make_app, owner, desktop_config):
    from tests.runtime_support import collect, edge, final, node, start, workflow
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await client.request("request_settings")
        app.menu.aboutToShow.emit()  # opening the menu reads the engine's status afresh
        assert "1 web GUI connected" in app.tray.icon.toolTip()
        assert "0 workflows running" in app.tray.icon.toolTip()
        slow = workflow([node("t", "manual_trigger"), node("wait", "delay", seconds=1.5)], [edge("t", "wait")])
        job_id = await start(client, slow)
        await wait_until(lambda: app.view.state is TrayState.BUSY, what="busy icon")
        assert app.tray.state is TrayState.BUSY
        assert app.menu.header.text() == "Flowork: running 1 workflow"
        assert "1 workflow running" in app.tray.icon.toolTip()
        assert "Workflows: 1 running" in app.status_window.details_text()
        assert final(await collect(client, job_id))["status"] == "SUCCEEDED"
        await wait_until(lambda: app.view.state is TrayState.IDLE, what="idle icon")
