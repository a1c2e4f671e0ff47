"""Finding bundled files (icons) both from a source checkout and inside a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """resources/<parts...>: under sys._MEIPASS when frozen, else at the repository root."""
    base = getattr(sys, "_MEIPASS", None)
    root = Path(base) if base else Path(__file__).resolve().parent.parent
    return root.joinpath("resources", *parts)


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))
