"""Still images: reading (orientation, bit depth, channels) and atomic writing."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from seedvr_desktop.errors import MediaError
from seedvr_desktop.media.images import (
    IMAGE_EXTENSIONS,
    exif_orientation,
    is_image_path,
    read_image,
    write_image,
)
from tests.clips import frame_id, frame_pattern, make_image


def test_extensions() -> None:
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"} == IMAGE_EXTENSIONS
    assert is_image_path("a/B.JPG") and is_image_path("x.tiff")
    assert not is_image_path("clip.mp4") and not is_image_path("noext")


@pytest.mark.parametrize("ext", ["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"])
def test_read_each_format(tmp_path, ext) -> None:
    img = read_image(make_image(tmp_path / f"s.{ext}", (97, 65), index=31))
    assert img.shape == (65, 97, 3) and img.dtype == np.uint8
    assert frame_id(img) == 31
    # Channel order: the pattern's box is blue-dominant in RGB.
    expected = frame_pattern(31, (97, 65)).astype(int)
    assert np.abs(img.astype(int) - expected).mean() < 6


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_sixteen_bit(tmp_path, ext) -> None:
    img = read_image(make_image(tmp_path / f"deep.{ext}", bit_depth=16, index=3))
    assert img.dtype == np.uint16 and img.shape == (64, 96, 3)
    assert frame_id(img) == 3
    assert np.array_equal(img, frame_pattern(3, (96, 64), bit_depth=16))


def test_gray_and_alpha_become_rgb(tmp_path) -> None:
    gray = read_image(make_image(tmp_path / "g.png", index=5, gray=True))
    assert gray.shape == (64, 96, 3)
    assert np.array_equal(gray[..., 0], gray[..., 2])
    assert frame_id(gray) == 5
    rgba = read_image(make_image(tmp_path / "a.png", index=6, alpha=True))
    assert rgba.shape == (64, 96, 3)
    assert np.array_equal(rgba, frame_pattern(6, (96, 64)))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_turns_upright(tmp_path, orientation) -> None:
    path = make_image(tmp_path / f"o{orientation}.jpg", (64, 96), index=9,
                      exif_orientation=orientation)
    assert exif_orientation(path.read_bytes()[:4096]) == orientation
    raw = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    with pytest.raises(ValueError):
        frame_id(raw[..., ::-1])  # stored turned
    img = read_image(path)
    assert img.shape == (96, 64, 3)
    assert frame_id(img) == 9


def test_exif_parser_rejects_garbage() -> None:
    assert exif_orientation(b"") == 1
    assert exif_orientation(b"\xff\xd8 random bytes Exif\x00\x00II*\x00\xff\xff\xff\xff") == 1


def test_write_read_round_trips(tmp_path) -> None:
    rgb = frame_pattern(17, (97, 65))
    write_image(tmp_path / "out.png", rgb)
    assert np.array_equal(read_image(tmp_path / "out.png"), rgb)
    write_image(tmp_path / "out.bmp", rgb)
    assert np.array_equal(read_image(tmp_path / "out.bmp"), rgb)
    for ext in ("jpg", "webp", "tif"):
        write_image(tmp_path / f"out.{ext}", rgb)
        back = read_image(tmp_path / f"out.{ext}")
        assert frame_id(back) == 17
        assert np.abs(back.astype(int) - rgb.astype(int)).mean() < 6
    deep = frame_pattern(4, (96, 64), bit_depth=16)
    write_image(tmp_path / "deep.png", deep)
    assert np.array_equal(read_image(tmp_path / "deep.png"), deep)
    write_image(tmp_path / "deep.jpg", deep)  # JPEG: reduced to 8 bits
    assert read_image(tmp_path / "deep.jpg").dtype == np.uint8


def test_write_float_and_replace(tmp_path) -> None:
    target = tmp_path / "f.png"
    target.write_bytes(b"old")
    img = np.zeros((8, 10, 3), np.float32)
    img[..., 1] = 1.0
    img[0, 0] = (0.5, 0.25, 2.0)  # out of range clips
    write_image(target, img)
    back = read_image(target)
    assert back.dtype == np.uint16  # PNG keeps 16 bits from float input
    assert tuple(back[0, 0]) == (32768, 16384, 65535)
    assert tuple(back[1, 1]) == (0, 65535, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]  # no temp file left


def test_write_errors_leave_nothing(tmp_path) -> None:
    with pytest.raises(MediaError):
        write_image(tmp_path / "x.gif", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.int64))
    assert list(tmp_path.iterdir()) == []


def test_read_errors(tmp_path) -> None:
    with pytest.raises(MediaError, match="not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(MediaError, match=r"text\.jpg"):
        read_image(tmp_path / "text.jpg")


def test_write_image_under_a_file_is_a_user_error(tmp_path) -> None:
    """A file where the output folder should be is the user's to fix: one line, nothing left."""
    import numpy as np
    import pytest

    from seedvr_desktop.errors import UserError
    from seedvr_desktop.media.images import write_image

    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write to"):
        write_image(blocker / "sub" / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
