"""DiT properties that hold for any input: grids, packing, loading errors, dtypes, file formats."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from seedvr_desktop.errors import ModelError
from seedvr_desktop.models.dit.attention import windowed_attention
from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.dit.model import NaDiT
from seedvr_desktop.models.dit.packing import Packing
from seedvr_desktop.models.dit.window import make_windows
from seedvr_desktop.models.loading import (
    build_dit,
    convert_dtype,
    load_dit,
    read_state_dict,
    save_safetensors,
)
from seedvr_desktop.models.presets import DIT_3B_KWARGS, DIT_7B_KWARGS, get_preset

METHODS = ("720pwin_by_size_bysize", "720pswin_by_size_bysize")
GRIDS = [(1, 1, 1), (1, 3, 5), (2, 7, 9), (5, 16, 28), (9, 24, 40), (3, 45, 80), (4, 80, 45)]



def tiny_config(family: str, layers: int = 3) -> DiTConfig:
    """Same code paths as the full models (head_dim 128, mm_layers sharing, last layer)."""
    kw = dict(DIT_3B_KWARGS if family == "v2" else DIT_7B_KWARGS)
    kw.update(vid_dim=256, txt_dim=256, emb_dim=6 * 256, heads=2, txt_in_dim=64,
              num_layers=layers, window=[(4, 3, 3)] * layers, block_type="mmdit_sr")
    kw["window_method"] = [METHODS[i % 2] for i in range(layers)]
    if family == "v2":
        kw["mm_layers"] = 1
    return DiTConfig.from_official(kw, family=family)


@functools.lru_cache(maxsize=4)
def tiny_state(family: str, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_dit(tiny_config(family), device="cpu")
    return {k: v.clone() for k, v in model.state_dict().items()}


def tiny_model(family: str) -> NaDiT:
    return load_dit(tiny_state(family), tiny_config(family))


def make_inputs(shapes: list[tuple[int, int, int]], txt_lens: list[int], seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    n_vid = sum(t * h * w for t, h, w in shapes)
    vid = torch.randn(n_vid, 33, generator=g)
    txt = torch.randn(sum(txt_lens), 64, generator=g)
    return (vid, txt, torch.tensor(shapes), torch.tensor(txt_lens)[:, None],
            torch.rand(len(shapes), generator=g) * 1000)


# ------------------------------------------------------------------------------ windows
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("grid", [*GRIDS, (21, 45, 80), (31, 90, 160), (1, 2, 200)])
def test_windows_cover_every_token_once(grid: tuple[int, int, int], method: str) -> None:
    cover = torch.zeros(grid, dtype=torch.int32)
    for (t0, t1), (h0, h1), (w0, w1) in make_windows(grid, (4, 3, 3), method):
        assert 0 <= t0 < t1 <= grid[0] and 0 <= h0 < h1 <= grid[1] and 0 <= w0 < w1 <= grid[2]
        cover[t0:t1, h0:h1, w0:w1] += 1
    assert torch.all(cover == 1)


def test_window_larger_than_grid_is_one_window() -> None:
    for method in METHODS:
        assert make_windows((1, 8, 8), (4, 3, 3), method) == [((0, 1), (0, 8), (0, 8))]
        assert make_windows((1, 1, 1), (4, 3, 3), method) == [((0, 1), (0, 1), (0, 1))]


# ------------------------------------------------------------------------------ attention
def _naive_attention(vq, vk, vv, tq, tk, tv, grid, method):
    """Loop-over-windows reference written from the doc §3.5.3, float64 softmax."""
    _, h, w = grid
    vid_out = torch.zeros_like(vq)
    txt_copies = []
    for (t0, t1), (h0, h1), (w0, w1) in make_windows(grid, (4, 3, 3), method):
        rows = [(a * h + b) * w + c for a in range(t0, t1) for b in range(h0, h1)
                for c in range(w0, w1)]
        q, k, v = (torch.cat([x[rows], y]).bfloat16().double() for x, y in
                   ((vq, tq), (vk, tk), (vv, tv)))
        att = torch.einsum("shd,uhd->hsu", q, k) / 128**0.5
        out = torch.einsum("hsu,uhd->shd", att.softmax(-1), v).bfloat16().float()
        vid_out[rows] = out[: len(rows)]
        txt_copies.append(out[len(rows):])
    return vid_out, torch.stack(txt_copies).mean(0)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("grid", GRIDS[:4])
def test_windowed_attention_matches_naive(grid, method, exact) -> None:
    g = torch.Generator().manual_seed(sum(grid))
    n, lt, heads = grid[0] * grid[1] * grid[2], 5, 2
    vq, vk, vv = (torch.randn(n, heads, 128, generator=g) for _ in range(3))
    tq, tk, tv = (torch.randn(lt, heads, 128, generator=g) for _ in range(3))
    packing = Packing([grid], [lt], torch.device("cpu"))
    plan = packing.window_plan((4, 3, 3), method, "mmrope3d")
    got_v, got_t = windowed_attention(vq, vk, vv, tq, tk, tv, plan, packing, exact=exact)
    ref_v, ref_t = _naive_attention(vq, vk, vv, tq, tk, tv, grid, method)
    # Both sides round q/k/v and outputs to bf16; only rare one-ulp bf16 flips may differ.
    for got, ref in ((got_v, ref_v), (got_t, ref_t)):
        diff = (got - ref).abs()
        assert diff.max() <= 2e-2
        assert (diff > 1e-6).float().mean() < 0.01


def test_v2_packed_text_rope_rows_follow_official_indexing() -> None:
    """Doc §3.5.4: sample b's text row j reads row Σ_{b'<b} L_b' + j of the repeated layout."""
    packing = Packing([(1, 1, 1), (1, 1, 1)], [3, 2], torch.device("cpu"))
    # Sample 0 has 2 windows: repeated layout rows = s0j0 s0j1 s0j2 s0j0 s0j1 s0j2 s1j0 s1j1.
    src, pos = packing.txt_rope_rows((2, 1))
    assert src.tolist() == [0, 1, 2, 0, 1]  # sample 1 (rows 3, 4) reads sample 0's copy
    assert pos.tolist() == [0.0, 1.0, 2.0, 0.0, 1.0]
    src1, pos1 = Packing([(1, 1, 1)], [4], torch.device("cpu")).txt_rope_rows((6,))
    assert src1.tolist() == [0, 1, 2, 3] and pos1.tolist() == [0.0, 1.0, 2.0, 3.0]


# ------------------------------------------------------------------------------ model
@pytest.mark.parametrize("family", ["v2", "v1"])
@pytest.mark.parametrize("latent", [(1, 2, 2), (1, 6, 10), (3, 8, 6), (2, 30, 18)])
def test_model_runs_on_any_grid(family: str, latent: tuple[int, int, int]) -> None:
    model = tiny_model(family)
    inputs = make_inputs([latent], [3])
    with torch.no_grad():
        out = model(*inputs)
    assert out.shape == (latent[0] * latent[1] * latent[2], 16)
    assert torch.isfinite(out).all()


def test_v1_packed_batch_equals_separate_samples() -> None:
    """v1 has no packing quirk: a packed batch equals each sample run alone (up to bf16 flips)."""
    model = tiny_model("v1")
    a, b = make_inputs([(1, 6, 10)], [3], seed=2), make_inputs([(2, 4, 8)], [4], seed=3)
    packed = (torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]), torch.cat([a[2], b[2]]),
              torch.cat([a[3], b[3]]), torch.cat([a[4], b[4]]))
    with torch.no_grad():
        both = model(*packed)
        sep = torch.cat([model(*a), model(*b)])
    diff = (both - sep).abs()
    # Only float rounding (GEMM row blocking, rare bf16 flips) may differ; mixing up samples'
    # text or windows would move the mean difference to ~0.1.
    assert diff.max() < 1e-3 and diff.mean() < 1e-5


def test_timestep_changes_output_and_scalar_timestep_accepted() -> None:
    model = tiny_model("v2")
    vid, txt, vs, ts, _ = make_inputs([(1, 4, 4)], [2])
    with torch.no_grad():
        a = model(vid, txt, vs, ts, torch.tensor([1000.0]))
        b = model(vid, txt, vs, ts, 1000.0)
        c = model(vid, txt, vs, ts, torch.tensor([500.0]))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_bad_shapes_are_rejected() -> None:
    model = tiny_model("v2")
    vid, txt, _, ts, t = make_inputs([(1, 4, 4)], [2])
    with pytest.raises(ValueError, match="even"):
        model(vid[:12], txt, torch.tensor([[1, 3, 4]]), ts, t)
    with pytest.raises(ValueError, match="rows"):
        model(vid[:8], txt, torch.tensor([[1, 4, 4]]), ts, t)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs_close_to_float32(dtype: torch.dtype) -> None:
    ref = tiny_model("v2")
    low = tiny_model("v2").to(dtype)
    freqs = [m.freqs for m in low.modules() if hasattr(m, "freqs")]
    assert freqs and all(f.dtype == torch.float32 for f in freqs)  # RoPE stays float32
    inputs = make_inputs([(2, 8, 12)], [3])
    with torch.no_grad():
        out_ref = ref(*inputs)
        out_low = low(*inputs)
    assert out_low.dtype == dtype and torch.isfinite(out_low).all()
    rel = (out_low.float() - out_ref).norm() / out_ref.norm()
    assert rel < 0.05


# ------------------------------------------------------------------------------ loading
def test_missing_key_gives_clear_error() -> None:
    state = dict(tiny_state("v2"))
    del state["blocks.1.attn.proj_qkv.all.weight"]
    with pytest.raises(ModelError) as exc:
        load_dit(state, tiny_config("v2"))
    msg = str(exc.value)
    assert "1 missing key(s)" in msg and "blocks.1.attn.proj_qkv.all.weight" in msg
    assert "\n" not in msg


def test_unexpected_key_and_wrong_shape_are_named() -> None:
    state = dict(tiny_state("v2"))
    state["extra.weight"] = torch.zeros(1)
    state["vid_out.proj.bias"] = torch.zeros(65)
    with pytest.raises(ModelError) as exc:
        load_dit(state, tiny_config("v2"))
    assert "unexpected key(s) (extra.weight)" in str(exc.value)
    assert "vid_out.proj.bias: file [65], model [64]" in str(exc.value)


def test_wrong_family_tiny_gives_family_hint() -> None:
    with pytest.raises(ModelError, match="7B family"):
        load_dit(tiny_state("v1"), tiny_config("v2"))
    with pytest.raises(ModelError, match="3B family"):
        load_dit(tiny_state("v2"), tiny_config("v1"))


def test_full_size_7b_file_into_3b_model_gives_family_hint() -> None:
    state_7b = build_dit(get_preset("seedvr2-7b").dit, device="meta").state_dict()  # no memory
    with pytest.raises(ModelError) as exc:
        load_dit(state_7b, get_preset("seedvr2-3b").dit)
    msg = str(exc.value)
    assert "7B family" in msg and "dim 3072, 36 layers" in msg and "choose the matching" in msg


def test_vae_file_given_as_dit_is_recognised() -> None:
    state = {"encoder.conv_in.weight": torch.zeros(1), "decoder.conv_out.weight": torch.zeros(1)}
    with pytest.raises(ModelError, match="VAE file"):
        load_dit(state, tiny_config("v2"))


def test_safetensors_round_trip_is_exact(tmp_path: Path) -> None:
    model = tiny_model("v1")
    path = save_safetensors(model, tmp_path / "sub" / "dit.safetensors")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = load_dit(path, tiny_config("v1"))
    inputs = make_inputs([(1, 6, 6)], [2])
    with torch.no_grad():
        assert torch.equal(model(*inputs), loaded(*inputs))
    assert read_state_dict(path).keys() == model.state_dict().keys()


def test_pth_and_converted_bf16_files_load(tmp_path: Path) -> None:
    state = tiny_state("v2")
    torch.save(state, tmp_path / "dit.pth")
    assert all(torch.equal(a, b) for a, b in
               zip(read_state_dict(tmp_path / "dit.pth").values(), state.values()))
    save_safetensors(convert_dtype(state, torch.bfloat16), tmp_path / "dit_bf16.safetensors")
    back = read_state_dict(tmp_path / "dit_bf16.safetensors")
    assert back["blocks.0.attn.rope.rope.freqs"].dtype == torch.float32
    assert back["vid_in.proj.weight"].dtype == torch.bfloat16
    model = load_dit(tmp_path / "dit_bf16.safetensors", tiny_config("v2"))
    assert model.vid_in.proj.weight.dtype == torch.bfloat16
    model32 = load_dit(tmp_path / "dit_bf16.safetensors", tiny_config("v2"), dtype=torch.float32)
    assert model32.vid_in.proj.weight.dtype == torch.float32


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"PK\x03\x04broken zip"])
def test_bad_files_raise_model_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(ModelError) as exc:
        read_state_dict(path)
    assert "\n" not in str(exc.value)
    with pytest.raises(ModelError, match="not found"):
        read_state_dict(tmp_path / "missing.safetensors")


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "obj": Path("x")}, path)
    with pytest.raises(ModelError, match="refused"):
        read_state_dict(path)


# ------------------------------------------------------------------------------ config
def test_config_round_trips_and_guesses_family() -> None:
    for preset in ("seedvr2-3b", "seedvr2-7b"):
        cfg = get_preset(preset).dit
        assert DiTConfig.from_official(cfg.to_official()) == cfg
    assert DiTConfig.from_official(DIT_3B_KWARGS).family == "v2"
    assert DiTConfig.from_official(DIT_7B_KWARGS).family == "v1"
    with pytest.raises(ValueError, match="family"):
        DiTConfig.from_official({"vid_dim": 256})
