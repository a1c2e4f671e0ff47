"""The tunnel: cloudflared as a supervised child with the token in its environment only.

cloudflared itself needs Cloudflare's servers, so a stand-in program records how it was started
and then runs until it is stopped (or exits, to exercise the restarts).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import psutil
import pytest

from desktop.tunnel import TunnelState
from tests.desktop.conftest import wait_until


@pytest.fixture
def fake_cloudflared(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "cloudflared-runs.jsonl"
    script = bin_dir / "cloudflared"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys, time
        with open({str(record)!r}, "a") as f:
            f.write(json.dumps({{"argv": sys.argv[1:], "token": os.environ.get("TUNNEL_TOKEN"),
                                 "pid": os.getpid()}}) + "\\n")
        print("INF Registered tunnel connection", flush=True)
        if os.path.exists({str(tmp_path / "exit-now")!r}):
            sys.exit(3)
        time.sleep(600)
        """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def runs() -> list[dict]:
        return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    runs.exit_flag = tmp_path / "exit-now"  # type: ignore[attr-defined]
    return runs


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_token_from_settings_runs_cloudflared_with_it_in_the_environment(make_app, fake_cloudflared, opened, desktop_config):
    app = await make_app()
    app.menu.settings.trigger()
    dialog = app.settings_dialog
    dialog.tunnel_token.setText("eyJ-secret-token")
    dialog.tunnel_hostname.setText("engine.example.com")
    dialog.save_button.click()
    await wait_until(lambda: app.tunnel.state is TunnelState.RUNNING and fake_cloudflared(), what="cloudflared")
    (run,) = fake_cloudflared()
    assert run["argv"] == ["tunnel", "--no-autoupdate", "run"]
    assert run["token"] == "eyJ-secret-token"
    assert "eyJ-secret-token" not in " ".join(psutil.Process(run["pid"]).cmdline())
    assert "Tunnel: running (wss://engine.example.com)" in app.tray.icon.toolTip()
    app.menu.open_gui.trigger()
    await wait_until(lambda: opened.urls, what="the browser")
    assert "engineUrl=wss%3A%2F%2Fengine.example.com%2F%3FengineId%3D" in opened.urls[-1]
    assert desktop_config.secrets.get("tunnel_token") == "eyJ-secret-token"

    app.menu.quit.trigger()
    await wait_until(app.finished.is_set, what="quit")
    await wait_until(lambda: gone(run["pid"]), what="cloudflared to end")


async def test_a_configured_tunnel_starts_with_the_app_and_is_restarted(make_app, fake_cloudflared, desktop_config):
    desktop_config.secrets.set("tunnel_token", "tok")
    app = await make_app()
    await wait_until(lambda: app.tunnel.state is TunnelState.RUNNING and fake_cloudflared(), what="cloudflared")
    first = fake_cloudflared()[0]["pid"]
    fake_cloudflared.exit_flag.write_text("")
    psutil.Process(first).terminate()  # it dies; every restart exits at once
    await wait_until(lambda: app.tunnel.state is TunnelState.ERROR, timeout=60, what="give-up")
    assert len(fake_cloudflared()) == 1 + 3
    assert "keeps exiting" in app.tunnel.detail


async def test_without_cloudflared_the_settings_say_how_to_get_it(make_app, monkeypatch, tmp_path, desktop_config):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr("desktop.tunnel.find_cloudflared", lambda: None)
    desktop_config.secrets.set("tunnel_token", "tok")
    app = await make_app(start_engine=False)
    assert app.tunnel.state is TunnelState.NOT_INSTALLED
    app.menu.settings.trigger()
    assert "cloudflared is not installed" in app.settings_dialog.tunnel_note.text()
    assert "Tunnel: cloudflared not found" in app.tray.icon.toolTip()
