"""Start, stop and restart from the real tray menu; crash restart and give-up; port conflict."""

from __future__ import annotations

import socket

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
    assert url.split("/?")[0] in app.menu.detail.text() and "CPU" in app.menu.detail.text()
    assert "running" in app.tray.icon.toolTip()
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
    assert app.menu.error_details.isVisible() and app.menu.restart.isEnabled()
    dialog = app.error_dialog
    assert dialog is not None and dialog.isVisible()
    assert "stopped unexpectedly" in dialog.detailedText()  # the last log lines
    dialog.buttonClicked.emit(app.error_restart_button)  # the dialog's own Restart
    await wait_until(lambda: app.supervisor.state is State.RUNNING, what="restart after give-up")
    assert not dialog.isVisible()


async def test_a_start_that_keeps_failing_gives_up(make_app, desktop_config, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    desktop_config.data_dir = blocker / "data"
    app = await make_app(start_engine=False, policy=RestartPolicy(base_delay_s=0.01))
    app.menu.start.trigger()
    await wait_until(lambda: app.supervisor.state is State.ERROR, what="give-up")
    assert app.supervisor.crashes == 4
    assert "not writable" in app.supervisor.error
    assert any("not writable" in line for line in app.supervisor.error_log)


async def test_port_in_use_names_the_holder_and_offers_another_port(make_app, desktop_config):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        desktop_config.update(port=port)
        app = await make_app()
        assert app.supervisor.state is State.PORT_IN_USE
        assert app.view.state is TrayState.PORT_IN_USE
        await wait_until(lambda: app.port_dialog is not None and app.port_dialog.isVisible(),
                         what="port dialog")
        import os
        assert f"pid {os.getpid()}" in app.port_dialog.text()
        assert str(port) in app.port_dialog.text()
        app.port_dialog.retry_button.click()  # still held: the same state again
        await wait_until(lambda: app.supervisor.state is State.PORT_IN_USE and app.port_dialog.isVisible())
        app.port_dialog.other_port_button.click()
        await wait_until(lambda: app.supervisor.state is State.RUNNING, what="start on another port")
        assert app.engine.config.port != port
        assert desktop_config.settings_file.load().port == app.engine.config.port
    finally:
        holder.close()


async def test_port_in_use_then_retry_once_it_is_free(make_app, desktop_config):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    desktop_config.update(port=port)
    app = await make_app()
    await wait_until(lambda: app.port_dialog is not None and app.port_dialog.isVisible())
    holder.close()
    app.port_dialog.retry_button.click()
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
        assert "1 client" in app.menu.detail.text() and "0 jobs running" in app.menu.detail.text()
        slow = workflow([node("t", "manual_trigger"), node("wait", "delay", seconds=1.5)], [edge("t", "wait")])
        job_id = await start(client, slow)
        await wait_until(lambda: app.view.state is TrayState.BUSY, what="busy icon")
        assert app.tray.state is TrayState.BUSY
        assert "1 job running" in app.menu.detail.text() and "1 running job(s)" in app.tray.icon.toolTip()
        assert final(await collect(client, job_id))["status"] == "SUCCEEDED"
        await wait_until(lambda: app.view.state is TrayState.IDLE, what="idle icon")
