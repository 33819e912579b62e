"""Clean synthetic footage and the degradations that the classic engine is measured against.

The classic engine has to beat bicubic upscaling on footage that was degraded on purpose, with the
clean frames kept as ground truth. Real footage cannot be committed, so this module renders frames
that have what home movies have: smooth gradients, fine multi-scale texture, sharp edges and
lettering, a slowly panning camera and objects that move across it. Frames are rendered at twice
the wanted size and area-downsampled, so edges are anti-aliased like a camera's.

Shared by tests/engine/test_classic.py and bench/classic.py; everything is seeded and
deterministic.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from seedvr_desktop.engine.base import ChunkContext, Engine, SourceInfo
from seedvr_desktop.engine.chunking import OverlapBlender, pad_chunk, plan_chunks


def _smooth_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise blurred by `sigma` pixels, normalised to unit standard deviation.

    Wide blurs are done on a smaller noise field that is then enlarged: the same look at a
    fraction of the cost (a 100-pixel Gaussian on a 4K canvas takes minutes).
    """
    height, width = shape[:2]
    factor = max(1.0, sigma / 2.0)
    small = (max(2, round(width / factor)), max(2, round(height / factor)))
    noise = rng.standard_normal((small[1], small[0], *shape[2:])).astype(np.float32)
    field = cv2.GaussianBlur(noise, (0, 0), sigma / factor)
    if factor > 1.0:
        field = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    field = field.reshape(shape)
    return field / (field.std() + 1e-6)


def _world_texture(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A static background larger than the frame: (height, width, 3) float32 in [0, 1]."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # Smooth colour gradients, like sky, walls and lighting falloff.
    base = np.stack(
        [
            0.45 + 0.25 * np.sin(xx / width * 2.1 + 0.3),
            0.40 + 0.20 * np.cos(yy / height * 2.7),
            0.35 + 0.20 * np.sin((xx + yy) / (width + height) * 3.3 + 1.0),
        ],
        axis=-1,
    )
    # 1/f-like texture: noise blurred at several scales, weaker at fine scales (foliage, fabric),
    # mostly in brightness with a little colour, as in real scenes.
    texture = np.zeros((height, width, 3), np.float32)
    unit = max(1.0, min(width, height) / 400.0)  # texture scales grow with the picture
    tint = np.array([1.0, 0.9, 0.8], np.float32)
    for sigma, amp in ((24.0, 0.09), (8.0, 0.05), (3.0, 0.03), (1.2, 0.018)):
        luma = _smooth_noise((height, width), sigma * unit, rng)
        chroma = _smooth_noise((height, width, 3), sigma * unit * 2, rng)
        texture += amp * (luma[..., None] * tint + 0.3 * chroma)
    img = base + texture
    # Sharp-edged man-made structure: boxes, bars, stripes and lettering.
    for _ in range(10):
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        w = int(rng.integers(20, max(21, width // 6)))
        h = int(rng.integers(20, max(21, height // 5)))
        color = tuple(float(c) for c in rng.uniform(0.05, 0.95, 3))
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), color, -1, cv2.LINE_AA)
    for i in range(6):
        y = int(rng.integers(0, height))
        cv2.line(
            img,
            (0, y),
            (width, y + int(rng.integers(-40, 40))),
            (0.9, 0.9, 0.85),
            2 + i % 3,
            cv2.LINE_AA,
        )
    # Lettering (cv2 draws text on 8-bit images only: draw a mask, then paint through it).
    scale = max(width, height) / 900.0
    for i in range(8):
        org = (int(rng.integers(0, width - 100)), int(rng.integers(30, height)))
        mask = np.zeros((height, width), np.uint8)
        cv2.putText(
            mask,
            f"Home {1987 + i}",
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            1.2 * scale + 0.4,
            255,
            max(1, int(2 * scale)),
            cv2.LINE_AA,
        )
        ink = np.array((0.05, 0.05, 0.1) if i % 2 else (0.95, 0.95, 0.9), np.float32)
        alpha = mask.astype(np.float32)[..., None] / 255.0
        img = img * (1.0 - alpha) + ink * alpha
    return np.clip(img, 0.0, 1.0)


@dataclass(frozen=True)
class _Mover:
    """A foreground object sliding across the frame."""

    kind: str
    x: float
    y: float
    vx: float
    vy: float
    size: float
    color: tuple[float, float, float]


def render_clip(width: int, height: int, frames: int, seed: int = 0) -> np.ndarray:
    """Clean footage: (frames, height, width, 3) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    ss = 2  # supersampling factor: render big, area-downsample for camera-like edges
    pan = 1.5  # camera speed in output pixels per frame
    world_w = (width + int(pan * frames) + 8) * ss
    world_h = (height + int(pan * frames) // 2 + 8) * ss
    world = _world_texture(world_w, world_h, rng)
    movers = [
        _Mover(
            kind=("ellipse", "box", "disk")[i % 3],
            x=float(rng.uniform(0.1, 0.9) * width * ss),
            y=float(rng.uniform(0.1, 0.9) * height * ss),
            vx=float(rng.uniform(-3, 3) * ss),
            vy=float(rng.uniform(-2, 2) * ss),
            size=float(rng.uniform(0.06, 0.14) * min(width, height) * ss),
            color=tuple(float(c) for c in rng.uniform(0.0, 1.0, 3)),
        )
        for i in range(4)
    ]
    out = np.empty((frames, height, width, 3), np.float32)
    for t in range(frames):
        ox, oy = round(pan * t * ss), round(pan * t * ss / 2)
        canvas = world[oy : oy + height * ss, ox : ox + width * ss].copy()
        for m in movers:
            cx, cy, r = int(m.x + m.vx * t), int(m.y + m.vy * t), int(m.size)
            if m.kind == "ellipse":
                cv2.ellipse(
                    canvas, (cx, cy), (r, r // 2), 20.0 + 3 * t, 0, 360, m.color, -1, cv2.LINE_AA
                )
            elif m.kind == "box":
                cv2.rectangle(canvas, (cx - r, cy - r), (cx + r, cy + r), m.color, -1, cv2.LINE_AA)
                cv2.rectangle(
                    canvas,
                    (cx - r // 2, cy - r // 2),
                    (cx + r // 2, cy + r // 2),
                    (1.0 - m.color[0], 1.0 - m.color[1], 1.0 - m.color[2]),
                    -1,
                    cv2.LINE_AA,
                )
            else:
                cv2.circle(canvas, (cx, cy), r, m.color, -1, cv2.LINE_AA)
                cv2.circle(canvas, (cx, cy), r // 3, (0.1, 0.1, 0.1), 3, cv2.LINE_AA)
        out[t] = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0.0, 1.0)


def downscale(frames: np.ndarray, factor: int = 2) -> np.ndarray:
    """Area-downscale each frame by an integer factor, as a low-resolution camera would."""
    _, h, w, _ = frames.shape
    return np.stack(
        [cv2.resize(f, (w // factor, h // factor), interpolation=cv2.INTER_AREA) for f in frames]
    )


def add_noise(frames: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    """Gaussian sensor noise of standard deviation `sigma` in 8-bit units, quantised to 8 bits."""
    rng = np.random.default_rng(seed)
    noisy = frames + rng.standard_normal(frames.shape).astype(np.float32) * (sigma / 255.0)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    """Compress every frame as a JPEG of the given quality and decode it back."""
    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        bgr = cv2.cvtColor(np.round(f * 255.0).astype(np.uint8), cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        dec = cv2.imdecode(data, cv2.IMREAD_COLOR)
        out[i] = cv2.cvtColor(dec, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return out


def h264(frames: np.ndarray, crf: int) -> np.ndarray:
    """Encode the clip with libx264 at a (high, i.e. poor) CRF in memory and decode it back."""
    t, h, w, _ = frames.shape
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.round(f * 255.0).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as inp:
        dec = [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
    assert len(dec) == t
    return np.stack(dec).astype(np.float32) / 255.0


# name -> how a clean high-resolution clip becomes the low-resolution input under test.
# All are strong: the low-resolution frames keep only 23-28 dB PSNR. (CRF 30 on the tests'
# 160x120 frames costs about as much as CRF 34 does at 256x192; bench/classic.py also runs
# CRF 34 at 854x480.)
DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "x2+noise": lambda hr: add_noise(downscale(hr), sigma=10.0),
    "x2+jpeg": lambda hr: jpeg(downscale(hr), quality=25),
    "x2+h264": lambda hr: h264(downscale(hr), crf=30),
    "x2+noise+jpeg": lambda hr: jpeg(add_noise(downscale(hr), sigma=7.0), quality=35),
}


def bicubic(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """The baseline: plain bicubic upscaling of every frame."""
    return np.clip(
        np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in frames]),
        0.0,
        1.0,
    )


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over a whole clip of float frames in [0, 1]."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(1.0 / mse)


def restore_clip(engine: Engine, frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Run a clip through the engine the way the pipeline does: chunks, padding, blending."""
    t, h, w, _ = frames.shape
    engine.prepare(SourceInfo(width=w, height=h, frame_rate=Fraction(25)), size)
    caps = engine.caps
    plans = plan_chunks(
        t, caps.chunk_length, caps.overlap, temporal_multiple=caps.temporal_multiple
    )
    blender = OverlapBlender(caps.overlap)
    out = []
    for plan in plans:
        chunk = pad_chunk(plan, frames[plan.start : plan.stop])
        restored = engine.restore_chunk(chunk, ChunkContext(plan.index, plan.start))
        out.extend(f for _, f in blender.push(plan, restored))
    out.extend(f for _, f in blender.flush())
    return np.stack(out)
