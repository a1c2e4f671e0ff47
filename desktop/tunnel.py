"""The Cloudflare tunnel: `cloudflared tunnel run` as a supervised child process.

The token goes to cloudflared through its environment (TUNNEL_TOKEN), never the command line,
where other users could read it in the process list. A tunnel that exits is restarted with the
same back-off rule as the engine; without cloudflared the state says how to get it.
"""

from __future__ import annotations

import logging
import shutil
import sys
from enum import Enum
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from desktop.supervisor import RestartPolicy

log = logging.getLogger(__name__)

DOWNLOAD_URL = "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/"


def install_hint(platform: str = sys.platform, *, html: bool = False) -> str:
    """'cloudflared is not installed. …' with this system's own way of installing it."""
    def code(text: str) -> str:
        return f"<code>{text}</code>" if html else f"`{text}`"
    page = (f"<a href=\"{DOWNLOAD_URL}\">Cloudflare's download page</a>" if html
            else f"Cloudflare's download page ({DOWNLOAD_URL})")
    if platform.startswith("linux"):
        how = (f"On Debian or Ubuntu, add Cloudflare's apt repository as {page} shows, then run "
               f"{code('sudo apt install cloudflared')} (or install the .deb from that page)")
    elif platform == "darwin":
        how = f"Install it with {code('brew install cloudflared')}, or get it from {page}"
    elif platform == "win32":
        how = f"Install it with {code('winget install --id Cloudflare.cloudflared')}, or get it from {page}"
    else:
        how = f"Get it from {page}"
    return f"cloudflared is not installed. {how}; then save the settings again."


INSTALL_HINT = install_hint()
INSTALL_HINT_HTML = install_hint(html=True)


class TunnelState(Enum):
    OFF = "off"                  # no token configured
    NOT_INSTALLED = "cloudflared not found"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    ERROR = "error"


def find_cloudflared() -> str | None:
    found = shutil.which("cloudflared")
    if found:
        return found
    for candidate in ("/usr/local/bin/cloudflared", "/opt/homebrew/bin/cloudflared",
                      r"C:\Program Files (x86)\cloudflared\cloudflared.exe",
                      r"C:\Program Files\cloudflared\cloudflared.exe"):
        if Path(candidate).is_file():
            return candidate
    return None


class Tunnel(QObject):
    state_changed = Signal(object)  # TunnelState

    def __init__(self, *, policy: RestartPolicy | None = None) -> None:
        super().__init__()
        self.policy = policy or RestartPolicy()
        self.state = TunnelState.OFF
        self.detail = ""
        self.hostname = ""
        self._token = ""
        self._process: QProcess | None = None
        self._stopping = False
        self._restart_timer = QTimer(self)
        self._restart_timer.setSingleShot(True)
        self._restart_timer.timeout.connect(self._launch)
        self._output: list[str] = []

    @property
    def public_url_base(self) -> str | None:
        return f"wss://{self.hostname}" if self.hostname and self.state is TunnelState.RUNNING else None

    def configure(self, token: str | None, hostname: str | None) -> None:
        """Apply new settings: (re)start with a token, stop without one."""
        self.stop()
        self._token = (token or "").strip()
        self.hostname = (hostname or "").strip()
        self.policy.reset()
        if not self._token:
            self._set(TunnelState.OFF, "No tunnel token is configured.")
            return
        self._launch()

    def _set(self, state: TunnelState, detail: str = "") -> None:
        self.state = state
        self.detail = detail
        self.state_changed.emit(state)

    def _launch(self) -> None:
        program = find_cloudflared()
        if program is None:
            self._set(TunnelState.NOT_INSTALLED, INSTALL_HINT)
            return
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("TUNNEL_TOKEN", self._token)
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(lambda p=process: self._read(p))
        process.started.connect(lambda: self._set(TunnelState.RUNNING, f"Tunnel to {self.hostname or 'your hostname'} is up."))
        process.finished.connect(lambda code, _status, p=process: self._finished(p, code))
        process.errorOccurred.connect(lambda err, p=process: self._error(p, err))
        self._process = process
        self._stopping = False
        self._set(TunnelState.STARTING, "Starting cloudflared.")
        process.start(program, ["tunnel", "--no-autoupdate", "run"])

    def _read(self, process: QProcess) -> None:
        text = bytes(process.readAllStandardOutput().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                log.info("cloudflared: %s", line.strip())
                self._output = (self._output + [line.strip()])[-20:]

    def _error(self, process: QProcess, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and process is self._process:
            self._process = None
            self._set(TunnelState.ERROR, f"cloudflared could not be started: {process.errorString()}")

    def _finished(self, process: QProcess, code: int) -> None:
        if process is not self._process:
            return
        self._process = None
        process.deleteLater()
        if self._stopping:
            return
        delay = self.policy.next_delay()
        last = self._output[-1] if self._output else "no output"
        if delay is None:
            self._set(TunnelState.ERROR, f"cloudflared keeps exiting (code {code}; last line: {last}). "
                                         "Check the token and hostname in Settings.")
            return
        log.warning("cloudflared exited with code %s; restarting in %.1f s", code, delay)
        self._set(TunnelState.RESTARTING, f"cloudflared exited (code {code}); restarting.")
        self._restart_timer.start(int(delay * 1000))

    def stop(self, timeout_ms: int = 5000) -> None:
        """Stop cloudflared and wait for it: nothing is left running."""
        self._restart_timer.stop()
        process = self._process
        if process is None:
            return
        self._stopping = True
        process.terminate()
        if not process.waitForFinished(timeout_ms):
            process.kill()
            process.waitForFinished(timeout_ms)
        self._process = None
        self._set(TunnelState.OFF, "Tunnel stopped.")

    @property
    def pid(self) -> int | None:
        return int(self._process.processId()) if self._process is not None else None



