"""Tray icons: the app's base image with the engine's state painted on it (QPainter).

Each state has a badge of its own *shape*, not only its own colour, so that the states tell
apart at 16 px and for people who do not see the colours: a dot (running), a play triangle
(running a workflow), a diamond (approval waiting), a cross (a run failed), a warning triangle
(error), a no-entry sign (port in use), a square on the greyed image (stopped) and a ring on it
(starting). Every tray size is painted at that size (QIcon picks the one it needs), rather
than one large image scaled down into a blur.

The base images are resources/icons/flowork-<size>.png; without them (a partial checkout) a
simple one is painted, so the tray never shows an empty square.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

from desktop.resources import resource_path

SIZE = 64
TRAY_SIZES = (16, 22, 24, 32, 48, 64)


class TrayState(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    APPROVAL = "approval waiting"
    RUN_FAILED = "a run failed"
    PORT_IN_USE = "port in use"
    ERROR = "error"


GREY = "#6f6f6f"
# state: (shape, colour)
_BADGES: dict[TrayState, tuple[str, str]] = {
    TrayState.STOPPED: ("square", GREY),
    TrayState.STARTING: ("ring", GREY),
    TrayState.IDLE: ("dot", "#2e9e4f"),
    TrayState.BUSY: ("play", "#0f8fb0"),
    TrayState.APPROVAL: ("diamond", "#e69500"),
    TrayState.RUN_FAILED: ("cross", "#d12f2f"),
    TrayState.PORT_IN_USE: ("no_entry", "#d12f2f"),
    TrayState.ERROR: ("warning", "#d12f2f"),
}
_FADED = (TrayState.STOPPED, TrayState.STARTING)


def base_image(size: int = SIZE) -> QImage:
    path = resource_path("icons", f"flowork-{size}.png")
    image = QImage(str(path)) if path.is_file() else QImage()
    if image.isNull():
        path = resource_path("icons", "flowork-256.png")
        image = QImage(str(path)) if path.is_file() else QImage()
    if image.isNull():
        image = _painted_base()
    if image.width() != size:
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image


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


def _polygon(box: QRectF, *points: tuple[float, float]) -> QPainterPath:
    path = QPainterPath()
    path.addPolygon(QPolygonF([QPointF(box.x() + x * box.width(), box.y() + y * box.height())
                               for x, y in points]))
    path.closeSubpath()
    return path


def _rect(box: QRectF, x: float, y: float, w: float, h: float) -> QRectF:
    return QRectF(box.x() + x * box.width(), box.y() + y * box.height(), w * box.width(), h * box.height())


def _badge(p: QPainter, shape: str, colour: QColor, box: QRectF, outline: float) -> None:
    """The badge's shape in `box`, filled with `colour`, with a white rim (and white marks)."""
    white = QColor("#ffffff")
    p.setPen(QPen(white, outline, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
    p.setBrush(QBrush(colour))
    if shape in ("dot", "ring", "no_entry"):
        p.drawEllipse(_rect(box, 0.06, 0.06, 0.88, 0.88))
        if shape == "ring":    # a hole in the middle: "on its way", not yet a full dot
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QBrush(white))
            p.drawEllipse(_rect(box, 0.3, 0.3, 0.4, 0.4))
        elif shape == "no_entry":
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QBrush(white))
            p.drawRect(_rect(box, 0.2, 0.38, 0.6, 0.24))
    elif shape == "square":
        p.drawRect(_rect(box, 0.12, 0.12, 0.76, 0.76))
    elif shape == "play":
        p.drawPath(_polygon(box, (0.1, 0.0), (1.0, 0.5), (0.1, 1.0)))
    elif shape == "diamond":
        p.drawPath(_polygon(box, (0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)))
    elif shape == "warning":
        p.drawPath(_polygon(box, (0.5, 0.0), (1.0, 0.94), (0.0, 0.94)))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(white))
        p.drawRect(_rect(box, 0.42, 0.3, 0.16, 0.34))
        p.drawRect(_rect(box, 0.42, 0.72, 0.16, 0.14))
    elif shape == "cross":
        t = 0.2  # half the bar's thickness
        p.drawPath(_polygon(box, (t, 0), (0.5, 0.5 - t), (1 - t, 0), (1, t), (0.5 + t, 0.5), (1, 1 - t),
                            (1 - t, 1), (0.5, 0.5 + t), (t, 1), (0, 1 - t), (0.5 - t, 0.5), (0, t)))
    else:
        raise ValueError(shape)


def state_image(state: TrayState, size: int = SIZE) -> QImage:
    image = base_image(size).convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    if state in _FADED:
        image = _faded(image)
    shape, colour = _BADGES[state]
    side = size * 0.6
    outline = max(1.0, size / 20)
    box = QRectF(size - side - outline / 2, size - side - outline / 2, side, side)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    _badge(p, shape, QColor(colour), box, outline)
    p.end()
    return image


def _faded(image: QImage) -> QImage:
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8).convertToFormat(
        QImage.Format.Format_ARGB32_Premultiplied)
    out = QImage(image.size(), QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    p = QPainter(out)
    p.setOpacity(0.55)
    p.drawImage(0, 0, grey)
    p.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
    p.drawImage(0, 0, image)  # keep the original shape's transparency
    p.end()
    return out


def state_icon(state: TrayState) -> QIcon:
    icon = QIcon()
    for size in TRAY_SIZES:
        icon.addPixmap(QPixmap.fromImage(state_image(state, size)))
    return icon


def app_icon() -> QIcon:
    icon = QIcon()
    for size in (*TRAY_SIZES, 128, 256):
        icon.addPixmap(QPixmap.fromImage(base_image(size)))
    return icon
