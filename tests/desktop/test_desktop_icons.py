"""Tray icon states tell apart at 16 px by shape, not only by colour: compared in grey (what
remains without colour vision), every pair of states differs in many pixels.

Also writes artifacts/screenshots/tray-icons.png (each state at its real tray sizes, and 16 px
enlarged) on a light and a dark panel, for a person to look at."""

from __future__ import annotations

from itertools import combinations

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from desktop.icons import TRAY_SIZES, TrayState, state_icon, state_image
from tests.desktop.test_desktop_xvfb_smoke import SCREENSHOTS


def grey(image: QImage, background: str) -> list[int]:
    """The image over a panel colour, as luminance only."""
    flat = QImage(image.size(), QImage.Format.Format_RGB32)
    flat.fill(QColor(background))
    p = QPainter(flat)
    p.drawImage(0, 0, image)
    p.end()
    g = flat.convertToFormat(QImage.Format.Format_Grayscale8)
    return [g.pixelColor(x, y).red() for y in range(g.height()) for x in range(g.width())]


def shape_difference(a: TrayState, b: TrayState, size: int, background: str) -> int:
    ga, gb = grey(state_image(a, size), background), grey(state_image(b, size), background)
    return sum(1 for x, y in zip(ga, gb) if abs(x - y) > 60)


def test_every_state_has_its_own_shape_at_16_px(qapp):
    for background in ("#ffffff", "#202020"):
        for a, b in combinations(TrayState, 2):
            diff = shape_difference(a, b, 16, background)
            assert diff >= 6, f"{a.value} and {b.value} differ in only {diff} pixels at 16 px"


def test_the_icon_holds_a_painted_image_per_tray_size(qapp):
    icon = state_icon(TrayState.ERROR)
    assert sorted(s.width() for s in icon.availableSizes()) == sorted(TRAY_SIZES)


def test_icon_sheet_for_people_to_look_at(qapp):
    states = list(TrayState)
    zoom = 4
    col = 16 * zoom + sum(TRAY_SIZES) + 12 * (len(TRAY_SIZES) + 1)
    sheet = QImage(col * 2, 40 + len(states) * 72, QImage.Format.Format_RGB32)
    sheet.fill(QColor("#ffffff"))
    p = QPainter(sheet)
    p.fillRect(QRect(col, 0, col, sheet.height()), QColor("#202020"))
    font = QFont()
    font.setPixelSize(12)
    p.setFont(font)
    for panel, (x0, ink) in enumerate(((0, "#000000"), (col, "#ffffff"))):
        p.setPen(QColor(ink))
        p.drawText(QPoint(x0 + 8, 20), "16 px ×4, then 16 22 24 32 48 64 px" + (" (dark panel)" if panel else ""))
        for row, state in enumerate(states):
            y = 40 + row * 72
            p.drawText(QPoint(x0 + 8, y + 68), state.value)
            big = state_image(state, 16).scaled(16 * zoom, 16 * zoom, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                Qt.TransformationMode.FastTransformation)
            p.drawImage(x0 + 8, y, big)
            x = x0 + 16 * zoom + 20
            for size in TRAY_SIZES:
                p.drawImage(x, y + 64 - size, state_image(state, size))
                x += size + 12
    p.end()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert sheet.save(str(SCREENSHOTS / "tray-icons.png"))
