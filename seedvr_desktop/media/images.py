"""Still images: read and write RGB arrays, with the container format taken from the extension.

OpenCV does the work because it reads and writes 16-bit PNG/TIFF and WebP without a detour
through a video muxer. We honour EXIF orientation on read (phone photos are stored sideways),
drop alpha (restoration works on RGB; transparency in home photos is rare and meaningless here),
and write atomically so a crash never leaves half an image where the user's file was meant to be.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from seedvr_desktop.errors import MediaError
from seedvr_desktop.fsutil import atomic_write_bytes

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
)
_SIXTEEN_BIT_OK = frozenset({".png", ".tif", ".tiff"})


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the extension names a still-image format we read and write."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) RGB; uint8, or uint16 for 16-bit PNG/TIFF. MediaError when unreadable."""
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"image not found: {p}")
    # imdecode on bytes handles non-ASCII paths on every platform, which imread does not.
    data = np.fromfile(os.fspath(p), dtype=np.uint8)
    if data.size == 0:
        raise MediaError(f"{p} is empty (0 bytes)")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise MediaError(f"{p.name} is not an image OpenCV can read")
    if img.dtype not in (np.uint8, np.uint16):
        img = _to_uint16(img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if p.suffix.lower() in (".jpg", ".jpeg", ".tif", ".tiff", ".webp"):
        img = _apply_exif_orientation(data, img)
    return np.ascontiguousarray(img)


def _to_uint16(img: np.ndarray) -> np.ndarray:
    """Float or 32-bit TIFFs: scale to 16 bits (floats are taken as 0..1)."""
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    info = np.iinfo(img.dtype)
    return (img.astype(np.float64) / info.max * 65535.0 + 0.5).astype(np.uint16)


def _apply_exif_orientation(data: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Turn the picture upright according to its EXIF orientation tag (1 = already upright)."""
    orientation = exif_orientation(data[:65536].tobytes())
    # EXIF orientation codes: 2/4 mirror, 3 half turn, 5/7 transpose/transverse, 6/8 quarter turn.
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return img if op is None else op(img)


EXIF_ROTATION_CW = {3: 180, 6: 90, 8: 270}  # orientations that are plain rotations


def exif_orientation(head: bytes) -> int:
    """The EXIF orientation (1..8) found in the first bytes of a JPEG/TIFF/WebP file, else 1."""
    idx = head.find(b"Exif\x00\x00")
    tiff = head[idx + 6:] if idx >= 0 else head
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    order: Literal["little", "big"] = "little" if tiff[:2] == b"II" else "big"

    def u16(off: int) -> int:
        return int.from_bytes(tiff[off:off + 2], order)

    def u32(off: int) -> int:
        return int.from_bytes(tiff[off:off + 4], order)

    ifd = u32(4)
    if ifd + 2 > len(tiff):
        return 1
    for k in range(u16(ifd)):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            break
        if u16(entry) == 0x0112:  # Orientation
            value = u16(entry + 8)
            return value if 1 <= value <= 8 else 1
    return 1


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write (H, W, 3) RGB uint8/uint16 (or float in [0, 1]) atomically; format from extension.

    16-bit data is kept for PNG/TIFF and reduced to 8 bits for the other formats.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise MediaError(f"cannot write an image with extension {ext or '(none)'}; "
                         f"use one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB, got shape {image.shape}")
    img = image
    if np.issubdtype(img.dtype, np.floating):
        deep = ext in _SIXTEEN_BIT_OK
        scale = 65535.0 if deep else 255.0
        img = np.clip(img * scale + 0.5, 0, scale).astype(np.uint16 if deep else np.uint8)
    elif img.dtype == np.uint16 and ext not in _SIXTEEN_BIT_OK:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported image dtype {img.dtype}")
    bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 95]
    ok, encoded = cv2.imencode(ext, bgr, params)
    if not ok:
        raise MediaError(f"OpenCV could not encode {p.name}")
    from seedvr_desktop.media.outputs import make_output_folder, unwritable_folder

    made = make_output_folder(p.parent)  # UserError naming the folder when it cannot be made
    try:
        atomic_write_bytes(p, encoded.tobytes())
    except OSError as exc:
        from seedvr_desktop.media.outputs import remove_empty_folders

        remove_empty_folders(made)
        raise unwritable_folder(p.parent, exc) from exc
