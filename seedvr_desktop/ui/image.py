"""numpy frames to Qt images, on the GUI thread only.

Worker and decoder threads hand the GUI plain numpy arrays (house rule: no QImage/QPixmap off the
GUI thread); this module is where they become paintable. The conversion copies the pixels once so
the QImage never points into an array that a cache may evict later.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 view of an RGB frame given as uint8, uint16 or float in [0, 1]."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise TypeError(f"unsupported frame dtype {image.dtype}")


def qimage_from_array(image: np.ndarray) -> QImage:
    """Copy an (H, W, 3) RGB or (H, W) grey frame into a self-owned QImage."""
    frame = np.ascontiguousarray(to_uint8(image))
    if frame.ndim == 2:
        h, w = frame.shape
        qimg = QImage(frame.data, w, h, w, QImage.Format.Format_Grayscale8)
        return qimg.copy()
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) frame, got shape {frame.shape}")
    h, w, _ = frame.shape
    qimg = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return qimg.copy()  # detach from the numpy buffer


def array_from_qimage(qimg: QImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB copy of a QImage; used by tests and screenshots to read pixels back."""
    rgb = qimg.convertToFormat(QImage.Format.Format_RGB888)
    h, w = rgb.height(), rgb.width()
    stride = rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()
