"""Render the application icon from `resources/icons/app.svg` for the desktops that need bitmaps.

Writes, under the output folder (default `build/icons`):

- `hicolor/<N>x<N>/apps/seedvr-desktop.png` for the freedesktop icon theme sizes, plus
  `hicolor/scalable/apps/seedvr-desktop.svg` (Linux menus and file managers);
- `app.ico` with PNG entries from 16 to 256 px (Windows executable icon);
- `app.icns` with PNG entries from 16 to 1024 px (macOS application bundle).

Why generated instead of committed: the SVG is the single source; bitmaps of it would drift the
moment somebody edits the drawing, and they would bloat the repository. The SVG is rendered with
Qt's own SVG renderer (the same one the app uses at run time) on the offscreen platform, so no
display and no extra tool (Inkscape, ImageMagick, Pillow) is needed.

Usage: python packaging/make_icons.py [--svg FILE] [--output DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICON_NAME = "seedvr-desktop"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS element types holding PNG data, by pixel size (the @2x types reuse the larger renders).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
    (b"ic09", 512), (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 256),
    (b"ic14", 512),
)


class IconRenderer:
    """Renders one SVG to square PNG images of any size with Qt's SVG module."""

    def __init__(self, svg: Path) -> None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtGui import QGuiApplication
        from PySide6.QtSvg import QSvgRenderer

        self._app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
        self._renderer = QSvgRenderer(str(svg))
        if not self._renderer.isValid():
            raise SystemExit(f"error: {svg} is not an SVG image Qt can read")

    def png(self, size: int) -> bytes:
        """PNG bytes of the icon drawn into a transparent size x size square."""
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
        from PySide6.QtGui import QImage, QPainter

        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self._renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        if _opaque_fraction(image) < 0.05:
            raise SystemExit(f"error: the {size} px render is empty; is Qt's SVG support intact?")
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not image.save(buffer, "PNG"):
            raise SystemExit(f"error: could not encode the {size} px icon as PNG")
        buffer.close()
        return bytes(data.data())


def _opaque_fraction(image: object) -> float:
    """Share of pixels with any opacity, sampled on a grid (cheap even at 1024 px)."""
    size = image.width()  # type: ignore[attr-defined]
    step = max(1, size // 32)
    points = [(x, y) for x in range(0, size, step) for y in range(0, size, step)]
    opaque = sum(1 for x, y in points if image.pixelColor(x, y).alpha() > 0)  # type: ignore[attr-defined]
    return opaque / len(points)


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico holding PNG-compressed entries (readable since Windows Vista)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))  # reserved, type 1 = icon, count
    offset = len(header) + 16 * len(sizes)
    entries, blobs = [], []
    for size in sizes:
        blob = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in the directory entry
        entries.append(struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(blob), offset))
        blobs.append(blob)
        offset += len(blob)
    return header + b"".join(entries) + b"".join(blobs)


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns made of PNG elements (the format Apple's own tools write today)."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
                    for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def _write(path: Path, data: bytes) -> None:
    """Atomic write: a half-written icon must never be picked up by the bundle build."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def make_icons(svg: Path, output: Path) -> list[Path]:
    """Render every icon file; returns the paths written."""
    renderer = IconRenderer(svg)
    sizes = sorted({*HICOLOR_SIZES, *ICO_SIZES, *(s for _, s in ICNS_TYPES)})
    pngs = {size: renderer.png(size) for size in sizes}
    written = []
    for size in HICOLOR_SIZES:
        path = output / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        _write(path, pngs[size])
        written.append(path)
    scalable = output / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(svg, scalable)
    written.append(scalable)
    _write(output / "app.ico", ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    _write(output / "app.icns", icns_bytes(pngs))
    written += [output / "app.ico", output / "app.icns"]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=ROOT / "resources" / "icons" / "app.svg")
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "icons")
    args = parser.parse_args(argv)
    if not args.svg.is_file():
        print(f"error: no icon drawing at {args.svg}", file=sys.stderr)
        return 1
    written = make_icons(args.svg, args.output)
    print(f"wrote {len(written)} icon files under {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
