"""The classic engine: beats bicubic on degraded footage, deinterlaces, behaves as an Engine."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest

from seedvr_desktop.engine.base import ChunkContext, SourceInfo
from seedvr_desktop.engine.classic import filters as cf
from seedvr_desktop.engine.classic.deinterlace import combing, guess_field_order, parity_for
from seedvr_desktop.engine.classic.engine import ClassicEngine
from seedvr_desktop.errors import Cancelled, UserError
from tests.engine.classic_material import (
    DEGRADATIONS,
    add_noise,
    bicubic,
    downscale,
    jpeg,
    psnr,
    render_clip,
    restore_clip,
)

HR_W, HR_H, FRAMES = 320, 240, 20


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    """Ground truth: (20, 240, 320, 3) float32."""
    return render_clip(HR_W, HR_H, FRAMES, seed=0)


def _source(w: int, h: int, **kw: object) -> SourceInfo:
    return SourceInfo(width=w, height=h, frame_rate=Fraction(25), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_beats_bicubic_on_degraded_footage(clean: np.ndarray, name: str) -> None:
    low = DEGRADATIONS[name](clean)  # (20, 120, 160, 3): x2 smaller, noisy and/or compressed
    restored = restore_clip(ClassicEngine(), low, (HR_W, HR_H))
    assert restored.shape == clean.shape and restored.dtype == np.float32
    baseline, ours = psnr(clean, bicubic(low, HR_W, HR_H)), psnr(clean, restored)
    print(f"{name}: bicubic {baseline:.2f} dB, classic {ours:.2f} dB")
    # Measured gains on this material: noise ~1.5 dB, JPEG ~0.7, H.264 ~0.2, noise+JPEG ~0.8.
    assert ours > baseline + 0.15


def test_also_helps_clean_input(clean: np.ndarray) -> None:
    low = downscale(clean[:6])
    restored = ClassicEngine()
    restored.prepare(_source(HR_W // 2, HR_H // 2), (HR_W, HR_H))
    out = restored.restore_chunk(low, ChunkContext(0, 0))
    assert psnr(clean[:6], out) > psnr(clean[:6], bicubic(low, HR_W, HR_H))


def _interlace(progressive: np.ndarray, first: str) -> np.ndarray:
    """Weave pairs of progressive frames (twice the frame rate) into interlaced frames."""
    a, b = progressive[0::2], progressive[1::2]
    out = a.copy()
    first_rows, second_rows = (slice(0, None, 2), slice(1, None, 2))
    if first == "bff":
        first_rows, second_rows = second_rows, first_rows
    out[:, first_rows] = a[:, first_rows]
    out[:, second_rows] = b[:, second_rows]
    return out


@pytest.mark.parametrize(("first", "order"), [("tff", "tt"), ("bff", "bb")])
def test_deinterlacing_removes_combs_with_the_right_field_order(
    clean: np.ndarray, first: str, order: str
) -> None:
    progressive = clean[:, :, :160]  # (20, 240, 160, 3), moving content at "50 fields/s"
    woven = _interlace(progressive, first)  # (10, 240, 160, 3)
    truth = progressive[0::2]  # each output frame shows the moment of its first field
    size = (160, 240)
    results = {}
    for field_order in ("tt", "bb", "unknown"):
        engine = ClassicEngine(denoise=0, detail=0)
        engine.prepare(_source(160, 240, interlaced=True, field_order=field_order), size)
        results[field_order] = engine.restore_chunk(woven, ChunkContext(0, 0))
    wrong = "bb" if order == "tt" else "tt"
    assert combing(results[order]) < 0.25 * combing(woven)
    assert psnr(truth, results[order]) > psnr(truth, woven) + 3.0
    assert psnr(truth, results[order]) > psnr(truth, results[wrong]) + 3.0  # order matters
    assert guess_field_order(woven) == first
    np.testing.assert_allclose(results["unknown"], results[order], atol=1e-6)  # guessed right


def test_progressive_source_is_not_deinterlaced(clean: np.ndarray) -> None:
    frames = clean[:3, :64, :64]
    engine = ClassicEngine(denoise=0, detail=0)
    engine.prepare(_source(64, 64), (64, 64))
    out = engine.restore_chunk(frames, ChunkContext(0, 0))
    assert psnr(frames, out) > 40.0  # only the gentle chroma clean-up touched it


def test_field_order_names() -> None:
    assert [parity_for(o) for o in ("tt", "bt", "bb", "tb", "progressive", "unknown")] == [
        "tff",
        "tff",
        "bff",
        "bff",
        None,
        None,
    ]


def test_caps_are_honest() -> None:
    caps = ClassicEngine.caps
    assert caps.name == "classic" and not caps.generative and not caps.needs_download
    assert "non-generative" in caps.description.lower()
    assert caps.temporal_multiple == 1 and 2 * caps.overlap < caps.chunk_length


@pytest.mark.parametrize(
    "options",
    [
        {"bogus": 1},
        {"denoise": -1},
        {"detail": "lots"},
        {"temporal_radius": 9},
        {"deinterlace": "maybe"},
        {"deblock": True},
    ],
)
def test_bad_options_are_user_errors(options: dict[str, object]) -> None:
    with pytest.raises(UserError):
        ClassicEngine(**options)


@pytest.mark.parametrize(
    ("src", "dst", "frames"),
    [
        ((75, 53), (150, 106), 4),
        ((64, 48), (64, 48), 3),
        ((64, 48), (32, 24), 2),
        ((40, 30), (100, 76), 1),
        ((7, 5), (14, 10), 3),  # too small for optical flow: no temporal filter,
    ],
)
def test_odd_sizes_single_frames_and_downscaling(src, dst, frames) -> None:
    rng = np.random.default_rng(0)
    clip = rng.random((frames, src[1], src[0], 3), dtype=np.float32)
    engine = ClassicEngine()
    engine.prepare(_source(*src), dst)
    out = engine.restore_chunk(clip, ChunkContext(0, 0))
    assert out.shape == (frames, dst[1], dst[0], 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_deterministic_and_cancellable(clean: np.ndarray) -> None:
    low = add_noise(downscale(clean[:5]), 8.0)
    engine = ClassicEngine()
    engine.prepare(_source(HR_W // 2, HR_H // 2), (HR_W, HR_H))
    a = engine.restore_chunk(low, ChunkContext(0, 0))
    b = engine.restore_chunk(low, ChunkContext(3, 40))
    np.testing.assert_array_equal(a, b)  # the chunk alone decides (resume gives the same)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        engine.restore_chunk(low, ChunkContext(0, 0), cancel)


def test_measurements(clean: np.ndarray) -> None:
    low = downscale(clean[:4])
    flat = np.full((4, 120, 160, 3), 0.5, np.float32)
    noisy = add_noise(flat, sigma=8.0)
    # independent RGB noise of 8/255 gives luma noise of 8 * 0.668 / 255 (BT.601 weights)
    assert cf.noise_sigma(cf.grey(noisy[0])) * 255 == pytest.approx(8 * 0.668, rel=0.2)
    assert cf.noise_sigma(cf.grey(low[0])) < 2.5 / 255
    ratio_clean, _ = cf.blockiness(low)
    ratio_jpeg, phase = cf.blockiness(jpeg(low, 25))
    assert ratio_clean < 1.05 < 1.15 < ratio_jpeg and phase == 7


def test_strength_scales_the_default_denoise_and_deblock() -> None:
    engine = ClassicEngine(strength=0.5)
    assert (engine.denoise, engine.deblock) == (0.5, 0.5)
    explicit = ClassicEngine(strength=2.0, denoise=0.3)
    assert (explicit.denoise, explicit.deblock) == (0.3, 2.0)  # an explicit value wins
    for bad in (-0.1, 3.5, "hard", True):
        with pytest.raises(UserError):
            ClassicEngine(strength=bad)
    # And it shows: on a noisy flat picture a stronger setting leaves less noise.
    flat = add_noise(np.full((5, 48, 64, 3), 0.5, np.float32), sigma=10.0)
    residual = []
    for strength in (0.0, 2.0):
        engine = ClassicEngine(strength=strength)
        engine.prepare(_source(64, 48), (64, 48))
        residual.append(float(engine.restore_chunk(flat, ChunkContext(0, 0))[2].std()))
    assert residual[1] < 0.7 * residual[0], residual
