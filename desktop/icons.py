"""Tray icons: the app's base image with the engine's state painted on it (QPainter).

The base image is resources/icons/flowork-256.png; without it (a partial checkout) a simple one
is painted, so the tray never shows an empty square.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QImage, QPainter, QPen, QPixmap

from desktop.resources import resource_path

SIZE = 64


class TrayState(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    APPROVAL = "approval waiting"
    PORT_IN_USE = "port in use"
    ERROR = "error"


# (badge colour, badge glyph); None = no badge
_BADGES: dict[TrayState, tuple[str, str] | None] = {
    TrayState.STOPPED: ("#8a8a8a", "■"),
    TrayState.STARTING: ("#8a8a8a", "…"),
    TrayState.IDLE: ("#2e9e4f", ""),
    TrayState.BUSY: ("#0f9fb0", "▶"),
    TrayState.APPROVAL: ("#f0a000", "?"),
    TrayState.PORT_IN_USE: ("#d12f2f", "!"),
    TrayState.ERROR: ("#d12f2f", "!"),
}


def base_image() -> QImage:
    path = resource_path("icons", "flowork-256.png")
    image = QImage(str(path)) if path.is_file() else QImage()
    if image.isNull():
        image = _painted_base()
    return image.scaled(SIZE, SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)


def _painted_base() -> QImage:
    image = QImage(256, 256, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor("#3b2f8f"))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(QRectF(8, 8, 240, 240), 48, 48)
    # three nodes joined by edges: a workflow
    p.setPen(QPen(QColor("#ffffff"), 14))
    nodes = [QPointF(70, 80), QPointF(186, 128), QPointF(70, 184)]
    p.drawLine(nodes[0], nodes[1])
    p.drawLine(nodes[2], nodes[1])
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#ffffff"))
    for n in nodes:
        p.drawEllipse(n, 26, 26)
    p.end()
    return image


def state_image(state: TrayState) -> QImage:
    image = base_image().convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    if state in (TrayState.STOPPED, TrayState.STARTING):
        image = _faded(image)
    badge = _BADGES[state]
    if badge is None:
        return image
    colour, glyph = badge
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    r = QRectF(SIZE * 0.5, SIZE * 0.5, SIZE * 0.48, SIZE * 0.48)
    p.setPen(QPen(QColor("#ffffff"), 3))
    p.setBrush(QBrush(QColor(colour)))
    p.drawEllipse(r)
    if glyph:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(SIZE * 0.3))
        p.setFont(font)
        p.setPen(QColor("#ffffff"))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, glyph)
    p.end()
    return image


def _faded(image: QImage) -> QImage:
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8).convertToFormat(
        QImage.Format.Format_ARGB32_Premultiplied)
    out = QImage(image.size(), QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    p = QPainter(out)
    p.setOpacity(0.7)
    p.drawImage(0, 0, grey)
    p.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
    p.drawImage(0, 0, image)  # keep the original shape's transparency
    p.end()
    return out


def state_icon(state: TrayState) -> QIcon:
    return QIcon(QPixmap.fromImage(state_image(state)))


def app_icon() -> QIcon:
    return QIcon(QPixmap.fromImage(base_image()))
