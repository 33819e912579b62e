"""`seedvr-desktop demo`: make a small degraded sample clip and restore it.

The sample is generated, not shipped: moving shapes over a gradient with a short melody, then
degraded the way old footage is (half resolution, sensor noise, heavy block compression). It
works on a fresh machine with no downloads and no third-party footage, and exercises the whole
path: PyAV encode with sound, probe, the default engine, audio copy.
"""

from __future__ import annotations

import argparse
import logging
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from seedvr_desktop.fsutil import atomic_path

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("sample_clip.restored.mp4")
SIZE = (320, 240)  # the clean picture; the sample is stored at half this size
FPS = 25
SECONDS = 4
SAMPLE_RATE = 48000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="restore a generated sample clip (no download)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="FILE",
                   help="restored clip; the sample is written beside it "
                   f"(default: {DEFAULT_OUTPUT})")
    p.add_argument("--engine", default="auto", help="engine to restore with (default: auto)")
    p.add_argument("--regenerate", action="store_true", help="make a new sample even if one exists")
    p.set_defaults(func=cmd_demo)


def sample_path_for(output: Path) -> Path:
    """`x.restored.mp4` -> `x.mp4`; otherwise `sample_clip.mp4` beside the output."""
    name = output.name
    if ".restored" in name:
        return output.with_name(name.replace(".restored", "", 1))
    return output.with_name("sample_clip.mp4")


def clean_frame(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """(H, W, 3) uint8 RGB picture of frame `index`: shapes moving over a soft gradient."""
    import cv2

    w, h = size
    t = index / FPS
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 60 + 80 * xs / w
    img[..., 1] = 90 + 60 * ys / h
    img[..., 2] = 150 - 50 * xs / w
    img = img.astype(np.uint8)
    cx = int(w * (0.5 + 0.35 * np.sin(2 * np.pi * t / SECONDS)))
    cv2.circle(img, (cx, h // 3), h // 8, (235, 200, 40), -1, cv2.LINE_AA)
    bx = int((t * 70) % (w + 60)) - 60
    cv2.rectangle(img, (bx, 2 * h // 3 - 20), (bx + 50, 2 * h // 3 + 20), (200, 40, 50), -1)
    angle = 90 * t
    box = cv2.boxPoints(((w * 0.75, h * 0.7), (40, 40), angle)).astype(np.int32)
    cv2.fillConvexPoly(img, box, (40, 170, 90), cv2.LINE_AA)
    cv2.putText(img, "1987", (12, h - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (250, 250, 240), 2,
                cv2.LINE_AA)
    return img


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half resolution plus noise (the blockiness comes from the encoder settings)."""
    import cv2

    h, w = image.shape[:2]
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
    small += np.asarray(rng.normal(0.0, 7.0, small.shape), dtype=np.float32)
    return np.clip(small, 0, 255).astype(np.uint8)


def _melody(n_samples: int) -> np.ndarray:
    """(2, n) float32 stereo: a few soft notes, so the copied audio is audible."""
    notes = [392.0, 440.0, 494.0, 523.25, 494.0, 440.0, 392.0, 330.0]
    t = np.arange(n_samples) / SAMPLE_RATE
    step = SECONDS / len(notes)
    idx = np.minimum((t / step).astype(int), len(notes) - 1)
    freq = np.asarray(notes)[idx]
    phase = (t % step) / step
    env = np.minimum(phase * 20, 1.0) * (1 - phase) ** 0.5
    mono = (0.25 * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([mono, mono * 0.8])


def make_sample(path: Path, seed: int = 1987) -> Path:
    """Write the degraded sample clip (H.264 at high quantisation + AAC) atomically."""
    import av

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = SIZE[0] // 2, SIZE[1] // 2
    with atomic_path(path, suffix=".mp4") as tmp, av.open(os.fspath(tmp), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        # A high fixed quantiser and no deblocking filter: visible 8x8 blocks, like old codecs.
        video.codec_context.options = {"qp": "32", "preset": "veryfast",
                                       "x264-params": "no-deblock=1"}
        audio = out.add_stream("aac", rate=SAMPLE_RATE)
        audio.codec_context.layout = "stereo"
        for i in range(FPS * SECONDS):
            frame = av.VideoFrame.from_ndarray(degrade(clean_frame(i), rng), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = _melody(SAMPLE_RATE * SECONDS)
        for start in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, start:start + 1024])
            if chunk.shape[1] < 1024:
                chunk = np.pad(chunk, ((0, 0), (0, 1024 - chunk.shape[1])))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            frame.time_base = Fraction(1, SAMPLE_RATE)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    from seedvr_desktop.cli_progress import run_job_with_progress
    from seedvr_desktop.engine.job import RestoreJob, SizeRule

    output: Path = args.output
    sample = sample_path_for(output)
    if args.regenerate or not sample.exists():
        print(f"making sample clip {sample}")
        make_sample(sample)
    # The sample is stored at half resolution, so the demo restores it back to full size.
    job = RestoreJob(input_path=sample, output_path=output, engine=args.engine,
                     size=SizeRule(scale=2.0), overwrite=True)
    code = run_job_with_progress(job)
    if code == 0:
        print(f"sample: {sample}\nrestored: {output}")
    return code
