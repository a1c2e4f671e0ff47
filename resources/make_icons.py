"""Make every Flowork icon from the one source image, resources/flowork.svg.

    python resources/make_icons.py            # rewrite resources/icons/
    python resources/make_icons.py --out DIR  # write somewhere else

Writes PNGs for the sizes the tray app, the Linux hicolor theme and the installers use
(`flowork-<size>.png`; the tray app starts from `flowork-256.png`), `flowork.ico` for Windows
(PyInstaller's EXE icon and the NSIS installer) and `flowork.icns` for macOS (the .app bundle).
Rendering is QtSvg's; the .ico and .icns containers are written here because both formats are
a short header plus images, and Qt's own icon readers check them in tests/test_packaging.py.
The generated files are committed, so that a source checkout has them without a build step;
run this again after editing the SVG.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "flowork.svg"
ICONS = HERE / "icons"

# hicolor theme sizes (16..512) and the tray base icon (256).
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
# Windows picks 16/24/32/48 for lists and the taskbar, 64/128/256 for large views and Explorer.
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# Apple's PNG-based icon types: (type, pixel size); the @2x types reuse larger renders.
ICNS_TYPES = ((b"ic11", 32), (b"ic12", 64), (b"ic07", 128), (b"ic13", 256), (b"ic08", 256),
              (b"ic14", 512), (b"ic09", 512), (b"ic10", 1024))


def render(renderer: QSvgRenderer, size: int) -> QImage:
    """The source drawn at size x size, straight (not premultiplied) ARGB as the formats want."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode a PNG")
    buffer.close()
    return bytes(data.data())


def _bgra_rows(image: QImage) -> list[bytes]:
    """Top-down rows of B, G, R, A bytes (Format_ARGB32 is BGRA in memory on little-endian)."""
    assert image.format() == QImage.Format.Format_ARGB32
    width = image.width()
    raw = bytes(image.constBits())
    stride = image.bytesPerLine()
    if sys.byteorder == "little":
        return [raw[y * stride:y * stride + width * 4] for y in range(image.height())]
    rows = []
    for y in range(image.height()):
        row = raw[y * stride:y * stride + width * 4]
        rows.append(b"".join(row[x:x + 4][::-1] for x in range(0, len(row), 4)))
    return rows


def ico_dib(image: QImage) -> bytes:
    """A 32-bit BMP entry: BITMAPINFOHEADER, bottom-up BGRA rows, then the 1-bit AND mask.

    BMP rather than PNG below 256 px because older readers (including the resource tools of
    some installers) only understand BMP entries there."""
    size = image.width()
    rows = _bgra_rows(image)
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    pixels = b"".join(reversed(rows))
    mask_stride = ((size + 31) // 32) * 4
    mask_rows = []
    for row in reversed(rows):
        bits = bytearray(mask_stride)
        for x in range(size):
            if row[x * 4 + 3] == 0:  # fully transparent: set in the AND mask too
                bits[x // 8] |= 0x80 >> (x % 8)
        mask_rows.append(bytes(bits))
    return header + pixels + b"".join(mask_rows)


def ico_bytes(images: dict[int, QImage]) -> bytes:
    """ICONDIR, one ICONDIRENTRY per size, then the images (PNG at 256, BMP below)."""
    sizes = sorted(images)
    blobs = [png_bytes(images[s]) if s >= 256 else ico_dib(images[s]) for s in sizes]
    offset = 6 + 16 * len(sizes)
    directory = struct.pack("<HHH", 0, 1, len(sizes))
    for size, blob in zip(sizes, blobs):
        directory += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
    return directory + b"".join(blobs)


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """'icns' header, a table of contents, then one PNG element per type (big-endian lengths)."""
    elements = [(kind, pngs[size]) for kind, size in ICNS_TYPES]
    toc = b"TOC " + struct.pack(">I", 8 + 8 * len(elements)) + b"".join(
        kind + struct.pack(">I", 8 + len(data)) for kind, data in elements)
    body = toc + b"".join(kind + struct.pack(">I", 8 + len(data)) + data for kind, data in elements)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def make_icons(out: Path, source: Path = SOURCE) -> list[Path]:
    """Write every icon into `out`; returns the files written."""
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (QtSvg needs one)
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        raise RuntimeError(f"{source} is not an SVG image QtSvg can render")
    sizes = sorted(set(PNG_SIZES) | set(ICO_SIZES) | {size for _, size in ICNS_TYPES})
    images = {size: render(renderer, size) for size in sizes}
    pngs = {size: png_bytes(image) for size, image in images.items()}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for size in PNG_SIZES:
        written.append(_write(out / f"flowork-{size}.png", pngs[size]))
    written.append(_write(out / "flowork.ico", ico_bytes({s: images[s] for s in ICO_SIZES})))
    written.append(_write(out / "flowork.icns", icns_bytes(pngs)))
    return written


def _write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ICONS, help=f"output folder (default {ICONS})")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the source SVG")
    args = parser.parse_args(argv)
    for path in make_icons(args.out, args.source):
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
