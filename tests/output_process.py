"""A real program run with its output read on a thread, so that waiting for a line has a time
limit and a failure shows what the program printed. Shared by the desktop process tests and the
installed-package tests."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path


class OutputProcess:
    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, cwd=cwd)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """The first output line (already read or new) matching `pattern`; fails with the output."""
        regex = re.compile(pattern)
        for line in self.lines:
            if (match := regex.search(line)):
                return match
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if (match := regex.search(line)):
                return match
        raise AssertionError(f"no line matching {pattern!r} from {self.proc.args[0]}:\n" + self.output())

    def output(self) -> str:
        """Everything printed so far."""
        while not self._queue.empty():
            self.lines.append(self._queue.get_nowait())
        return "\n".join(self.lines)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None
