"""Run the real `flowork` program (python -m desktop) and read what it prints, for the tests
that need separate processes: single instance, no display, the Xvfb smoke test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.output_process import OutputProcess


class Flowork(OutputProcess):
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        super().__init__([sys.executable, "-m", "desktop", *args],
                         env if env is not None else dict(os.environ),
                         Path(__file__).resolve().parents[2])
