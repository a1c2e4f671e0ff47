"""Colours taken from the palette in use (light or dark), so text stays readable on both."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

# An error red for light backgrounds and one for dark ones; the one that reads better wins.
ERROR_REDS = ("#b3261e", "#ff8a80")


def luminance(colour: QColor) -> float:
    """WCAG relative luminance."""
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def error_colour(palette: QPalette) -> QColor:
    background = palette.color(QPalette.ColorRole.Window)
    return max((QColor(c) for c in ERROR_REDS), key=lambda c: contrast(c, background))
