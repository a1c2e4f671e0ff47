"""Text that came from a workflow (names, messages, errors, payloads) is shown as plain text,
never interpreted as HTML: these helpers are the one place that decides how."""

from __future__ import annotations

import html
import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def plain_label(text: str = "", *, wrap: bool = False, selectable: bool = False) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def tooltip(text: str) -> str:
    """A tooltip that shows `text` as written: Qt guesses rich text from tags, so the text is
    escaped inside an explicit rich-text wrapper."""
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>"


def pretty(value: Any) -> str:
    """JSON for people: indented, keys in their order, non-ASCII as is."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
