"""The SeedVR engine on tiny random-weight models: shapes, determinism, guidance, windows,
memory fallback and cancel."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from seedvr_desktop.engine.base import ChunkContext, SourceInfo
from seedvr_desktop.engine.seedvr.engine import SeedVREngine
from seedvr_desktop.engine.seedvr.memory import RunSettings
from seedvr_desktop.errors import Cancelled, UserError
from tests.engine.seedvr_tiny import write_tiny_model


@pytest.fixture(scope="module")
def v2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "v2")


def _clip(n: int = 9, h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth moving pattern (T, H, W, 3) in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for t in range(n):
        r = 0.5 + 0.4 * np.sin((xx + 2 * t) / 7.0 + seed)
        g = 0.5 + 0.4 * np.cos((yy - t) / 5.0)
        b = 0.5 + 0.3 * np.sin((xx + yy + 3 * t) / 9.0)
        frames.append(np.stack([r, g, b], -1))
    return np.stack(frames).astype(np.float32)


def _engine(folder: Path, size: tuple[int, int] = (64, 48), **options: object) -> SeedVREngine:
    engine = SeedVREngine("seedvr", model_dir=folder, device="cpu", **options)
    engine.prepare(SourceInfo(48, 32, Fraction(25)), size)
    return engine


def test_chunk_has_output_size_range_and_content(v2_dir: Path) -> None:
    engine = _engine(v2_dir, size=(70, 50))  # not a multiple of 16: padded, then cropped
    frames = _clip(7)  # not 4n+1: padded inside, cut back
    out = engine.restore_chunk(frames, ChunkContext(0, 0, seed=3))
    assert out.shape == (7, 50, 70, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert out.std() > 0.01  # a real picture, not a constant
    # The wavelet colour fix takes the low frequencies from the resized input, so the
    # restored frames keep its colour even though the random model's detail is noise;
    # without a colour fix the same model drifts far more.
    ref = _resize(frames, 70, 50).mean(axis=(1, 2))
    raw = _engine(v2_dir, size=(70, 50), color_fix="none").restore_chunk(
        frames, ChunkContext(0, 0, seed=3))
    fixed_drift = np.abs(out.mean(axis=(1, 2)) - ref).mean()
    raw_drift = np.abs(raw.mean(axis=(1, 2)) - ref).mean()
    assert fixed_drift < 0.03 and raw_drift > 3 * fixed_drift
    assert set(engine.stage_seconds) >= {"encode", "dit", "decode", "color"}


def _resize(frames: np.ndarray, w: int, h: int) -> np.ndarray:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    y = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", antialias=True)
    return y.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def test_same_seed_same_output_other_seed_differs(v2_dir: Path) -> None:
    frames = _clip(9)
    a = _engine(v2_dir).restore_chunk(frames, ChunkContext(4, 120, seed=7))
    # A fresh engine (as after a resume) and another chunk index at the same position.
    b = _engine(v2_dir).restore_chunk(frames, ChunkContext(0, 120, seed=7))
    assert np.array_equal(a, b)
    c = _engine(v2_dir).restore_chunk(frames, ChunkContext(4, 120, seed=8))
    assert np.abs(a - c).mean() > 1e-3
    d = _engine(v2_dir).restore_chunk(frames, ChunkContext(4, 124, seed=7))
    assert np.abs(a - d).mean() > 1e-3  # noise follows the absolute frame position


def test_seedvr_multistep_uses_guidance(tmp_path: Path) -> None:
    """SeedVR (v1 recipe, 7B-family architecture): steps x 2 DiT calls with CFG, x 1 without."""
    folder = write_tiny_model(tmp_path / "v1", family="v1", arch="v1", steps=3,
                              dit_file="seedvr_ema_7b.pth")
    calls: list[int] = []
    for cfg, expected in ((6.5, 6), (1.0, 3)):
        engine = _engine(folder, cfg_scale=cfg)
        assert engine.recipe.family == "v1" and engine.recipe.steps == 3
        hook = engine.model.dit.register_forward_pre_hook(lambda m, a: calls.append(1))
        out = engine.restore_chunk(_clip(5), ChunkContext(0, 0, seed=1))
        hook.remove()
        assert len(calls) == expected and np.isfinite(out).all()
        calls.clear()


def test_dit_windows_are_blended(v2_dir: Path) -> None:
    frames = _clip(21)
    whole = _engine(v2_dir).restore_chunk(frames, ChunkContext(0, 0, seed=2))
    windowed = _engine(v2_dir, dit_window=3).restore_chunk(frames, ChunkContext(0, 0, seed=2))
    assert windowed.shape == whole.shape
    assert not np.array_equal(windowed, whole)  # windows see less context
    # Blending keeps the windowed result smooth: no frame-to-frame jump bigger than the
    # largest jump the whole-chunk run has.
    jumps = np.abs(np.diff(windowed, axis=0)).mean(axis=(1, 2, 3))
    ref = np.abs(np.diff(whole, axis=0)).mean(axis=(1, 2, 3))
    assert jumps.max() < 2.0 * ref.max()


def test_out_of_memory_retries_with_frugal_settings(v2_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _clip(9)
    reference = _engine(v2_dir).restore_chunk(frames, ChunkContext(0, 0, seed=4))
    engine = _engine(v2_dir)
    vae = engine.model.vae
    original = vae.decode_slice
    failures = {"left": 1}

    def flaky(*args: object, **kwargs: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(vae, "decode_slice", flaky)
    out = engine.restore_chunk(frames, ChunkContext(0, 0, seed=4))
    assert engine.oom_retries and engine.oom_retries[0][0] == "decode"
    assert engine.settings.offload_dit  # first remedy for the VAE stages
    np.testing.assert_array_equal(out, reference)  # exact settings change nothing


def test_out_of_memory_in_dit_shrinks_the_window(v2_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(v2_dir)
    dit = engine.model.dit
    original = dit.forward

    def limited(vid: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if vid.shape[0] > 6 * 8:  # more than one latent frame of 6x8 does not "fit"
            raise RuntimeError("CUDA error: out of memory")
        return original(vid, *args, **kwargs)

    monkeypatch.setattr(dit, "forward", limited)
    out = engine.restore_chunk(_clip(17), ChunkContext(0, 0, seed=4))
    assert out.shape == (17, 48, 64, 3) and np.isfinite(out).all()
    assert engine.settings.dit_window == 1  # 5 latents -> windows of 2 -> of 1
    assert [stage for stage, _ in engine.oom_retries] == ["dit", "dit"]


def test_out_of_memory_everywhere_is_a_clear_user_error(v2_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(v2_dir)

    def always(*args: object, **kwargs: object) -> object:
        raise torch.OutOfMemoryError("out of memory")

    monkeypatch.setattr(engine.model.vae, "encode_slice", always)
    with pytest.raises(UserError, match="out of memory in the encode stage"):
        engine.restore_chunk(_clip(5), ChunkContext(0, 0))


def test_small_memory_budget_chooses_frugal_settings(v2_dir: Path) -> None:
    roomy = _engine(v2_dir, size=(512, 384), memory_budget_gb=64)
    tight = _engine(v2_dir, size=(512, 384), memory_budget_gb=0.2)
    assert roomy.settings.tile is None and roomy.settings.dit_window is None
    assert tight.settings.tile is not None  # approximate VAE tiles


def test_tiled_vae_stays_close_to_whole_frames(v2_dir: Path) -> None:
    frames = _clip(5, 48, 64)
    whole = _engine(v2_dir, size=(128, 96)).restore_chunk(frames, ChunkContext(0, 0, seed=1))
    other_seed = _engine(v2_dir, size=(128, 96)).restore_chunk(frames, ChunkContext(0, 0, 2))
    tiled_engine = _engine(v2_dir, size=(128, 96), vae_tile=12)  # 12x16 latents: 2 columns
    tiled = tiled_engine.restore_chunk(frames, ChunkContext(0, 0, seed=1))
    assert tiled_engine.settings.tile == 12 and tiled.shape == whole.shape
    assert not np.array_equal(tiled, whole)
    # Tiles overlap by 4 latents and are feathered: the change is small next to what a
    # different noise seed changes (the random DiT amplifies every latent difference).
    assert np.abs(tiled - whole).mean() < 0.25 * np.abs(other_seed - whole).mean()


def test_cancel_mid_chunk_returns_within_a_second(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "slow", family="v1", steps=400, cfg_scale=6.5)
    engine = _engine(folder)
    cancel = threading.Event()
    result: dict[str, object] = {}

    def run() -> None:
        try:
            engine.restore_chunk(_clip(9), ChunkContext(0, 0), cancel)
            result["outcome"] = "finished"
        except Cancelled:
            result["outcome"] = "cancelled"
        result["at"] = time.monotonic()

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while "dit" not in engine._stage_name and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the DiT steps are running (mid-chunk)
    time.sleep(0.2)
    asked = time.monotonic()
    cancel.set()
    worker.join(10)
    assert result.get("outcome") == "cancelled"
    assert float(result["at"]) - asked < 1.0  # type: ignore[arg-type]


def test_cancel_inside_a_vae_slice(v2_dir: Path) -> None:
    """Cancel is checked before every VAE convolution, not only between slices."""
    from seedvr_desktop.models.vae.causal_conv import CausalConv3d

    engine = _engine(v2_dir, size=(128, 96))
    decoder_convs = [m for m in engine.model.vae.decoder.modules() if isinstance(m, CausalConv3d)]
    cancel = threading.Event()
    calls = {"n": 0}

    def count(module: object, args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            cancel.set()  # three convolutions into the first decode slice

    handles = [m.register_forward_pre_hook(count) for m in decoder_convs]
    try:
        with pytest.raises(Cancelled):
            engine.restore_chunk(_clip(9, 48, 64), ChunkContext(0, 0), cancel)
    finally:
        for h in handles:
            h.remove()
    assert calls["n"] == 3  # stopped right there, not at the end of the slice


def test_settings_describe_and_defaults() -> None:
    s = RunSettings()
    assert "whole chunk" in s.describe()
    assert "tiles" in RunSettings(tile=32, offload_dit=True).describe()


def test_unknown_options_are_refused_like_the_classic_engine() -> None:
    with pytest.raises(UserError, match="colour_fix"):
        SeedVREngine("seedvr2-3b", colour_fix="lab")  # a typo of color_fix
    SeedVREngine("seedvr2-3b", strength=1.0, prompt="old tape")  # project-wide, unused here
