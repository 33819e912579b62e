"""Test media for the cluster tests: a clip with hard scene cuts and an audio track, and
readers that compare outputs by decoded pictures and by encoded packets."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.clips import frame_pattern


def _shot_picture(shot: int, index: int, size: tuple[int, int]) -> np.ndarray:
    """Frame `index` of shot `shot`: each shot its own colours, so a cut is a hard cut."""
    base = frame_pattern(index, size).astype(np.int32)
    tint = np.array([[(97, 0, 0), (0, 0, 0), (0, 120, 0), (0, 0, 150)][shot % 4]], np.int32)
    return np.clip(255 - base + tint if shot % 2 else base + tint, 0, 255).astype(np.uint8)


def make_cut_clip(path: Path, *, shots: tuple[int, ...] = (23, 19, 26), size: tuple[int, int] =
                  (64, 48), fps: int = 25) -> Path:
    """An H.264 + AAC clip whose shots (frame counts given) are separated by hard cuts."""
    with av.open(os.fspath(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {"preset": "ultrafast", "g": "12"}
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        index = 0
        for shot, count in enumerate(shots):
            for _ in range(count):
                frame = av.VideoFrame.from_ndarray(_shot_picture(shot, index, size), "rgb24")
                frame.pts = index
                frame.time_base = Fraction(1, fps)
                container.mux(video.encode(frame))
                index += 1
        container.mux(video.encode(None))
        seconds = Fraction(index, fps)
        samples = int(48000 * seconds)
        t = np.arange(samples, dtype=np.float32) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, samples, 1024):
            block = tone[start:start + 1024][None, :]
            aframe = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            aframe.sample_rate, aframe.pts = 48000, start
            container.mux(audio.encode(aframe))
        container.mux(audio.encode(None))
    return path


def pictures(path: Path) -> list[np.ndarray]:
    with av.open(os.fspath(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def packets(path: Path, kind: str = "video") -> list[tuple[int | None, bytes]]:
    """(pts, payload) of every packet of the first stream of `kind`."""
    with av.open(os.fspath(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]


def assert_same_output(got: Path, want: Path) -> None:
    """Same pictures, same video packets and same audio packets."""
    a, b = pictures(got), pictures(want)
    assert len(a) == len(b) > 0
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert np.array_equal(x, y), f"frame {i} differs"
    assert packets(got) == packets(want)
    assert packets(got, "audio") == packets(want, "audio")
