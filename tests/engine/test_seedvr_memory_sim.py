"""VAE tile order and carries, the planner's choice, the block arena, and a reduced run of
bench/memory_sim.py (the real chunk path on the meta device against the plan's estimate)."""

from __future__ import annotations

import importlib.util
import sys
import weakref
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from seedvr_desktop.engine.base import ChunkContext, SourceInfo
from seedvr_desktop.engine.seedvr import memory
from seedvr_desktop.engine.seedvr.engine import SeedVREngine
from seedvr_desktop.engine.seedvr.hooks import BlockStreamer, dit_block_hooks, streamed_tensors
from seedvr_desktop.engine.seedvr.memory import GIB, ModelSizes, RunSettings, estimate, fit
from seedvr_desktop.engine.seedvr.meta_measure import vae_slice_bytes
from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.presets import default_vae_config
from tests.conftest import REPO_ROOT
from tests.engine.seedvr_tiny import write_tiny_model


@pytest.fixture(scope="module")
def sim() -> ModuleType:
    path = REPO_ROOT / "bench" / "memory_sim.py"
    spec = importlib.util.spec_from_file_location("memory_sim", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["memory_sim"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sizes_3b() -> ModelSizes:
    return ModelSizes.from_configs(DiTConfig(), default_vae_config(), 58)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "v2")


# ------------------------------------------------------------------------------ tile order
@pytest.mark.parametrize("stage", ["encode_slice", "decode_slice"])
def test_tiles_are_the_outer_loop_with_one_tile_of_carries_alive(
        tiny: Path, monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    engine = SeedVREngine("seedvr", model_dir=tiny, device="cpu", vae_tile=12)
    engine.prepare(SourceInfo(64, 48, Fraction(25)), (128, 96))  # 12x16 latents: 2 columns
    vae = engine.model.vae
    real = getattr(vae, stage)
    calls: list[tuple[tuple[int, ...], bool]] = []
    alive: list[weakref.ref[Any]] = []
    most_alive = [0]

    def spy(x: torch.Tensor, state: Any, options: Any = None) -> Any:
        calls.append((tuple(x.shape[-2:]), state is None))
        out, new = real(x, state, options)
        alive.append(weakref.ref(new))
        most_alive[0] = max(most_alive[0], sum(r() is not None for r in alive))
        return out, new

    monkeypatch.setattr(vae, stage, spy)
    frames = np.random.default_rng(0).random((13, 48, 64, 3), dtype=np.float32)
    engine.restore_chunk(frames, ChunkContext(0, 0, 1))
    starts = [i for i, (_, first) in enumerate(calls) if first]
    slices = len(calls) // len(starts)
    assert len(starts) == 2 and slices > 2  # two tiles, each streamed through every slice
    assert starts == [0, slices]  # tile 2 starts only after tile 1 went through all slices
    assert most_alive[0] <= 2  # the previous slice's state while the next one is made


def test_one_tiles_carries_are_far_below_the_whole_frames() -> None:
    cfg = default_vae_config()
    _, frame = vae_slice_bytes(cfg, 2, 720, 1280, 2, 1, 0.5 * GIB, decode=True, fused=True)
    _, tile = vae_slice_bytes(cfg, 2, 320, 320, 2, 1, 0.5 * GIB, decode=True, fused=True)
    assert frame > 6 * GIB  # causal carries of a whole 720p frame (every conv keeps 2 frames)
    assert tile < frame * (320 * 320) / (720 * 1280) * 1.2  # carries scale with the tile area
    settings = RunSettings(tile=32, offload_dit=True)
    tiled = estimate(ModelSizes.from_configs(DiTConfig(), cfg, 58), settings, 61, 1280, 720, 2,
                     scores=False)
    assert tiled.decode < 3.5 * GIB  # one tile's carries, not the sum over all tiles


# ------------------------------------------------------------------------------ planner
def test_planner_picks_the_fastest_exact_plan_that_fits(sizes_3b: ModelSizes) -> None:
    on_80 = fit(sizes_3b, 61, 1280, 720, 80 * GIB, 2, scores=False)
    assert on_80 == RunSettings()  # nothing to give up on a big card
    on_24 = fit(sizes_3b, 61, 1280, 720, 24 * GIB, 2, scores=False)
    # Exact offload beats approximate 512 px tiles, and nothing is streamed.
    assert on_24.tile is None and on_24.offload_dit and not on_24.stream_blocks
    assert on_24.dit_window is None
    on_8 = fit(sizes_3b, 61, 1280, 720, 8 * GIB, 2, scores=False)
    assert on_8.stream_blocks and on_8.tile is not None  # 6.3 GiB of weights: they must move
    for budget in (8, 12, 16, 24, 80):
        s = fit(sizes_3b, 61, 1920, 1080, budget * GIB, 2, scores=False)
        est = estimate(sizes_3b, s, 61, 1920, 1080, 2, scores=False)
        assert est.peak <= budget * GIB * memory.SAFETY


def test_planner_counts_bytes_per_weight(sizes_3b: ModelSizes) -> None:
    bf16 = estimate(sizes_3b, RunSettings(), 21, 1280, 720, 2, scores=False)
    fp8 = estimate(sizes_3b, RunSettings(), 21, 1280, 720, 2, scores=False, weight_bytes=1.0)
    assert bf16.dit - fp8.dit == pytest.approx(sizes_3b.dit_params, rel=1e-6)


def test_uncalibrated_speed_follows_the_card_class() -> None:
    h100 = memory.default_rates("cuda", "NVIDIA H100 80GB HBM3")["dit"]
    rtx = memory.default_rates("cuda", "NVIDIA GeForce RTX 3060")["dit"]
    assert h100 > 5 * rtx
    assert memory.default_rates("cpu")["dit"] < rtx


# ------------------------------------------------------------------------------ streaming
def test_block_arena_is_one_buffer_near_the_streamed_bytes() -> None:
    from seedvr_desktop.models.loading import build_dit
    from seedvr_desktop.models.presets import get_preset

    dit = build_dit(get_preset("seedvr2-3b").dit, device="meta").to(torch.bfloat16)
    streamed = sum(t.numel() * t.element_size() for b in dit.blocks for t in streamed_tensors(b))
    streamer = BlockStreamer(dit, torch.device("meta"), torch.device("meta"))
    assert streamed <= streamer.host_bytes <= 1.1 * streamed
    assert streamer.arena.numel() == streamer.host_bytes  # one allocation, not one per tensor
    largest = max(sum(t.numel() * t.element_size() for t in streamed_tensors(b))
                  for b in dit.blocks)
    assert largest <= streamer.slot_bytes <= 1.01 * largest
    assert streamer.device_bytes == 2 * streamer.slot_bytes  # a ring of two block buffers


def test_streamed_blocks_give_the_same_output_and_leave_rope_alone(tiny: Path) -> None:
    engine = SeedVREngine("seedvr", model_dir=tiny, device="cpu")
    engine.load()
    dit = engine.model.dit
    torch.manual_seed(0)
    t, h, w = 2, 4, 6
    vid = torch.randn(t * h * w, dit.config.vid_in_channels)
    txt = engine.model.pos_emb
    shape = torch.tensor([[t, h, w]])
    txt_shape = torch.tensor([[txt.shape[0]]])
    with torch.inference_mode():
        plain = dit(vid, txt, shape, txt_shape, torch.tensor([500.0]))
    streamer = BlockStreamer(dit, torch.device("cpu"), torch.device("cpu"))
    ropes = [m.rope.freqs for m in dit.modules() if hasattr(m, "rope") and
             hasattr(m.rope, "freqs")]
    stamps = [(f.data_ptr(), f._version) for f in ropes]
    with dit_block_hooks(dit, None, streamer), torch.inference_mode():
        streamed = dit(vid, txt, shape, txt_shape, torch.tensor([500.0]))
        again = dit(vid, txt, shape, txt_shape, torch.tensor([500.0]))
    torch.testing.assert_close(streamed, plain, rtol=0, atol=0)
    torch.testing.assert_close(again, plain, rtol=0, atol=0)
    assert [(f.data_ptr(), f._version) for f in ropes] == stamps  # RoPE freqs never moved
    block = dit.blocks[0]
    p = next(block.parameters())
    start = streamer.arena.data_ptr()
    assert start <= p.data_ptr() < start + streamer.host_bytes  # home is the arena again


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_streaming_prefetch_on_cuda_matches_resident(tiny: Path) -> None:
    engine = SeedVREngine("seedvr", model_dir=tiny, device="cuda", precision="bf16")
    engine.load()
    dit = engine.model.dit.to("cuda")
    vid = torch.randn(48, dit.config.vid_in_channels, device="cuda")
    txt = engine.model.pos_emb.to("cuda")
    args = (vid, txt, torch.tensor([[2, 4, 6]]), torch.tensor([[txt.shape[0]]]),
            torch.tensor([500.0], device="cuda"))
    with torch.inference_mode():
        plain = dit(*args)
    streamer = BlockStreamer(dit, torch.device("cuda"), torch.device("cpu"))
    assert streamer.copy_stream is not None
    with dit_block_hooks(dit, None, streamer), torch.inference_mode():
        streamed = dit(*args)
    torch.cuda.synchronize()
    torch.testing.assert_close(streamed, plain, rtol=0, atol=0)


# ------------------------------------------------------------------------------ simulation
@pytest.mark.parametrize(("card_gb", "size"), [(8, (1280, 720)), (24, (1280, 720))])
def test_memory_sim_reduced_run_fits_and_matches_the_estimate(
        sim: ModuleType, card_gb: int, size: tuple[int, int]) -> None:
    row = sim.cell("seedvr2-3b", size[0], size[1], card_gb, frames=9)
    assert row["fits"], row
    assert abs(row["estimate_gib"] / row["peak_gib"] - 1) <= 0.15, row
