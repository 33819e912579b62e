"""Shared builders for the project tests: small projects over files that exist on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seedvr_desktop.project.fingerprint import compute_fingerprint
from seedvr_desktop.project.model import (
    Caption,
    Clip,
    ExportSettings,
    MediaRef,
    ProbeSummary,
    Project,
    RestoreSettings,
)


def write_media(path: Path, size: int = 3 << 20, seed: int = 0) -> Path:
    """A file standing in for a capture: distinct random bytes (serialization never decodes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(16) + bytes([seed % 256]) * 16 + os.urandom(size - 32))
    return path


def make_project(folder: Path) -> Project:
    """A two-media, three-clip project whose media live in `folder/media`."""
    a = write_media(folder / "media" / "tape1.avi")
    b = write_media(folder / "media" / "sub dir" / "tape 2 ü.mp4", size=(1 << 20) + 5, seed=1)
    ref_a = MediaRef(
        path=a.absolute(),
        probe=ProbeSummary(720, 576, "25/1", 500, 20.0, False, True, "dvvideo"),
        fingerprint=compute_fingerprint(a),
    )
    ref_b = MediaRef(
        path=b.absolute(),
        probe=ProbeSummary(1920, 1080, "30000/1001", 300, 10.01, False, False, "h264"),
        fingerprint=compute_fingerprint(b),
    )
    return Project(
        name="Family tapes",
        media=[ref_a, ref_b],
        clips=[
            Clip(
                media_id=ref_a.id,
                name="Birthday",
                in_frame=25,
                out_frame=250,
                restore={"seed": 7, "size": (1440, 1152)},
                captions=[
                    Caption(0.5, 3.25, "Grandma's 80th, 1994"),
                    Caption(4.0, 6.0, "Top\nline", position="top", color="#ffdd00", size=0.08),
                ],
                prompt="a sharp, clean home video",
            ),
            Clip(media_id=ref_b.id, name="Beach"),
            Clip(media_id=ref_a.id, name="Cake", in_frame=400, out_frame=500),
        ],
        restore=RestoreSettings(engine="classic", scale=2.0, color_fix="adain",
                                extra={"denoise": 0.3, "deinterlace": True}),
        export=ExportSettings(container="mkv", codec="ffv1", captions="burned"),
    )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)
