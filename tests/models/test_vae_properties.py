"""Properties of the causal VAE that hold for any weights: causality, exact slicing and tiling,
images as one-frame clips, the official state-dict layout, and checkpoint loading rules.

A tiny randomly initialised VAE keeps these fast; the maths under test does not depend on size.
It runs in float64 so that "exact" means exact: slicing or tiling that dropped or misplaced a
single frame, row or carry would show far above the 1e-12 tolerance, while float32 would blur
such errors with ~1e-6 of re-association noise.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from seedvr_desktop.errors import ModelError
from seedvr_desktop.models.vae import blocks, causal_conv
from seedvr_desktop.models.vae.causal_conv import CausalContext, CausalConv3d
from seedvr_desktop.models.vae.config import VAEConfig
from seedvr_desktop.models.vae.loading import (
    build_vae,
    convert_legacy_attention_keys,
    infer_vae_config,
    load_vae,
)
from seedvr_desktop.models.vae.model import VAEOptions, VideoVAE
from tests.conftest import require_shared, shared_dir

TINY = VAEConfig(block_out_channels=(8, 8, 16, 16), norm_num_groups=4, latent_channels=4)
WHOLE = VAEOptions(encode_slice=None, decode_slice=None)
EXACT = 1e-12  # float64: re-association noise only



@pytest.fixture(scope="module")
def vae() -> VideoVAE:
    torch.manual_seed(0)
    model = VideoVAE(TINY).eval().double()
    with torch.no_grad():  # non-trivial norms and upsamplers so every path carries signal
        for name, p in model.named_parameters():
            if "norm" in name or "upscale_conv" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def _clip(t: int, h: int = 16, w: int = 24, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, 3, t, h, w), generator=g, dtype=torch.float64) * 2 - 1


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# ----------------------------------------------------------------------------- causality
@pytest.mark.parametrize("k", [1, 4, 5, 8])
def test_encoder_is_causal(vae: VideoVAE, k: int) -> None:
    """Latent j sees input frames <= 4j: changing frame k leaves latents j < ceil(k/4) alone."""
    x = _clip(9)
    y = x.clone()
    y[:, :, k] = -y[:, :, k]
    a, b = vae.encode(x, WHOLE).mean, vae.encode(y, WHOLE).mean
    first_changed = math.ceil(k / 4)
    assert _err(a[:, :, :first_changed], b[:, :, :first_changed]) == 0.0
    assert _err(a[:, :, first_changed], b[:, :, first_changed]) > 1e-4  # the change is seen


@pytest.mark.parametrize("j", [1, 2])
def test_decoder_is_causal(vae: VideoVAE, j: int) -> None:
    """Output frame f depends on latents <= ceil(f/4): latent j first shows in frame 4j-3."""
    z = torch.randn(1, 4, 3, 2, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z2 = z.clone()
    z2[:, :, j] += 1.0
    a, b = vae.decode(z, WHOLE), vae.decode(z2, WHOLE)
    first = 4 * j - 3
    assert _err(a[:, :, :first], b[:, :, :first]) == 0.0
    assert _err(a[:, :, first], b[:, :, first]) > 1e-4


# ----------------------------------------------------------------------------- slicing
@pytest.mark.parametrize("slices", [(5, 4, 4), (1, 4, 8), (9, 4), (1, 12)])
def test_sliced_encode_equals_whole(vae: VideoVAE, slices: tuple[int, ...]) -> None:
    x = _clip(sum(slices))
    whole = vae.encode(x, WHOLE)
    state, means, logvars, start = None, [], [], 0
    for n in slices:
        post, state = vae.encode_slice(x[:, :, start : start + n], state)
        means.append(post.mean)
        logvars.append(post.logvar)
        start += n
    assert state.frames == x.shape[2]
    assert _err(torch.cat(means, 2), whole.mean) <= EXACT
    assert _err(torch.cat(logvars, 2), whole.logvar) <= EXACT


@pytest.mark.parametrize("slices", [(1, 1, 1, 1), (2, 1, 1), (1, 3), (3, 1)])
def test_sliced_decode_equals_whole(vae: VideoVAE, slices: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(1, 4, sum(slices), 2, 3, generator=g, dtype=torch.float64)
    whole = vae.decode(z, WHOLE)
    state, parts, start = None, [], 0
    for n in slices:
        part, state = vae.decode_slice(z[:, :, start : start + n], state)
        parts.append(part)
        start += n
    assert torch.cat(parts, 2).shape == whole.shape
    assert _err(torch.cat(parts, 2), whole) <= EXACT


def test_builtin_slicing_matches_whole(vae: VideoVAE) -> None:
    x = _clip(13)
    sliced = VAEOptions(encode_slice=4, decode_slice=1)
    assert _err(vae.encode(x, sliced).mean, vae.encode(x, WHOLE).mean) <= EXACT
    z = vae.encode(x, WHOLE).mean
    assert _err(vae.decode(z, sliced), vae.decode(z, WHOLE)) <= EXACT


def test_interleaved_streams_do_not_interfere(vae: VideoVAE) -> None:
    """State lives in the caller's hands: two clips streamed alternately give their own results."""
    a, b = _clip(9, seed=4), _clip(9, seed=5)
    sa = sb = None
    outs: dict[str, list[torch.Tensor]] = {"a": [], "b": []}
    for lo, hi in ((0, 5), (5, 9)):
        pa, sa = vae.encode_slice(a[:, :, lo:hi], sa)
        pb, sb = vae.encode_slice(b[:, :, lo:hi], sb)
        outs["a"].append(pa.mean)
        outs["b"].append(pb.mean)
    assert _err(torch.cat(outs["a"], 2), vae.encode(a, WHOLE).mean) <= EXACT
    assert _err(torch.cat(outs["b"], 2), vae.encode(b, WHOLE).mean) <= EXACT


def test_bad_slice_lengths_are_refused(vae: VideoVAE) -> None:
    with pytest.raises(ValueError, match="4n\\+1"):
        vae.encode_slice(_clip(4), None)
    _, state = vae.encode_slice(_clip(5), None)
    with pytest.raises(ValueError, match="multiple of 4"):
        vae.encode_slice(_clip(3), state)
    with pytest.raises(ValueError, match="4n\\+1"):
        vae.encode(_clip(6))


# ----------------------------------------------------------------------------- tiling
def test_tiled_and_chunked_equal_untiled(vae: VideoVAE, monkeypatch) -> None:
    calls = {"tiles": 0, "norm_chunks": 0}
    tile, div = CausalConv3d._conv_tiled, blocks._largest_divisor_at_most

    def count_tile(self, *a, **k):
        calls["tiles"] += 1
        return tile(self, *a, **k)

    def count_div(*a):
        calls["norm_chunks"] += 1
        return div(*a)

    monkeypatch.setattr(causal_conv.CausalConv3d, "_conv_tiled", count_tile)
    monkeypatch.setattr(blocks, "_largest_divisor_at_most", count_div)
    x = _clip(5, 24, 40)
    limited = VAEOptions(
        encode_slice=None, decode_slice=None, conv_max_bytes=20_000, norm_max_bytes=1000
    )
    assert _err(vae.encode(x, limited).mean, vae.encode(x, WHOLE).mean) <= EXACT
    z = vae.encode(x, WHOLE).mean
    assert _err(vae.decode(z, limited), vae.decode(z, WHOLE)) <= EXACT
    assert calls["tiles"] > 10 and calls["norm_chunks"] > 10


def test_channels_last_layout_is_exact(vae: VideoVAE) -> None:
    """The CUDA fast path's NDHWC layout (forced here on the CPU) gives the same numbers, also
    when sliced and tiled."""
    x = _clip(9, 16, 24)
    nhwc = VAEOptions(encode_slice=4, decode_slice=1, conv_max_bytes=20_000, channels_last=True)
    ref = vae.encode(x, WHOLE).mean
    assert _err(vae.encode(x, nhwc).mean, ref) <= EXACT
    assert _err(vae.decode(ref, nhwc), vae.decode(ref, WHOLE)) <= EXACT


@pytest.mark.parametrize(
    ("kernel", "stride", "tpad", "spad"),
    [
        ((3, 3, 3), (1, 1, 1), 1, (1, 1, 1, 1)),  # resnet conv
        ((3, 3, 3), (2, 2, 2), 1, (0, 1, 0, 1)),  # temporal+spatial downsampler
        ((1, 3, 3), (1, 2, 2), 0, (0, 1, 0, 1)),  # spatial-only downsampler
    ],
)
@pytest.mark.parametrize("limit", [1, 700, 5000])
def test_conv_tiles_exactly_with_carry(kernel, stride, tpad, spad, limit) -> None:
    """Any tile budget (down to one output pixel per tile) gives the untiled result, also with a
    streaming carry in front and odd frame sizes."""
    torch.manual_seed(6)
    conv = CausalConv3d(3, 5, kernel, stride=stride, temporal_padding=tpad, spatial_padding=spad)
    conv = conv.double()
    x = torch.randn(1, 3, 5, 11, 13, dtype=torch.float64)
    first = CausalContext(streaming=True)
    ref1 = conv(x, first)
    nxt = CausalContext(first=False, carry_in=first.carry_out)
    ref2 = conv(x * 0.5, nxt)
    first_t = CausalContext(streaming=True, conv_max_bytes=limit)
    assert _err(conv(x, first_t), ref1) <= EXACT
    nxt_t = CausalContext(first=False, carry_in=first_t.carry_out, conv_max_bytes=limit)
    assert _err(conv(x * 0.5, nxt_t), ref2) <= EXACT


def test_conv_is_causal_with_replicated_first_frame() -> None:
    """Frame 0 padding is a copy of frame 0 (not zeros): a constant clip stays constant."""
    conv = CausalConv3d(1, 1, (3, 1, 1), temporal_padding=1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.full((1, 1, 4, 2, 2), 2.0)
    assert torch.equal(conv(x), torch.full((1, 1, 4, 2, 2), 6.0))


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(("t", "h", "w"), [(1, 8, 8), (5, 16, 40), (9, 24, 16), (13, 8, 24)])
def test_any_size_round_trips_in_shape(vae: VideoVAE, t: int, h: int, w: int) -> None:
    x = _clip(t, h, w)
    post = vae.encode(x)
    assert post.mean.shape == (1, 4, (t - 1) // 4 + 1, h // 8, w // 8)
    assert vae.decode(post.mean).shape == x.shape


def test_image_is_a_one_frame_clip(vae: VideoVAE) -> None:
    """A 4-D image encodes like frame 0 of a clip (causality) and decodes back to 4-D."""
    x = _clip(5)
    image_post = vae.encode(x[:, :, 0])
    assert image_post.mean.shape == (1, 4, 1, 2, 3)
    assert _err(image_post.mean[:, :, 0], vae.encode(x, WHOLE).mean[:, :, 0]) <= EXACT
    out = vae.decode(image_post.mean[:, :, 0])
    assert out.shape == (1, 3, 16, 24)
    assert _err(out, vae.decode(image_post.mean)[:, :, 0]) == 0.0


def test_sample_uses_noise_and_generator(vae: VideoVAE) -> None:
    post = vae.encode(_clip(5))
    eps = torch.randn_like(post.mean)
    assert torch.allclose(vae.sample(post, noise=eps), post.mean + post.std * eps)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(vae.sample(post, generator=g1), vae.sample(post, generator=g2))


def test_bfloat16_runs_close_to_float32(vae: VideoVAE) -> None:
    x = _clip(5)
    ref = vae.encode(x, WHOLE).mean
    half = VideoVAE(TINY).eval()
    half.load_state_dict(vae.state_dict())
    half = half.to(torch.bfloat16)
    out = half.encode(x, WHOLE).mean
    assert out.dtype == torch.bfloat16
    assert _err(out.double(), ref) <= 0.05 * ref.abs().max().item()


# ----------------------------------------------------------------------------- layout and loading
def test_full_size_layout_matches_official() -> None:
    path = require_shared(shared_dir() / "seedvr-layout" / "vae.tsv", "VAE layout file")
    expected = []
    for line in path.read_text().splitlines():
        key, shape, _dtype = line.split("\t")
        expected.append((key, json.loads(shape)))
    model = build_vae(VAEConfig(), device="meta")
    got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert got == expected
    assert sum(v.numel() for v in model.state_dict().values()) == 250_648_227


def test_config_from_official_keywords() -> None:
    official = {  # configs_3b/main.yaml + s8_c16_t4_inflation_sd3.yaml, as in the doc §1.2
        "__object__": {"name": "VideoAutoencoderKLWrapper"},
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock3D"] * 4,
        "up_block_types": ["UpDecoderBlock3D"] * 4,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 16,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "temporal_scale_num": 2,
        "spatial_downsample_factor": 8,
        "temporal_downsample_factor": 4,
        "inflation_mode": "pad",
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "slicing_sample_min_size": 4,
        "freeze_encoder": False,
        "scaling_factor": 0.18215,  # the VAE yaml's own value, unused by inference
    }
    cfg = VAEConfig.from_official(official)
    assert cfg == VAEConfig() and cfg.scaling_factor == 0.9152
    assert (cfg.spatial_factor, cfg.temporal_factor) == (8, 4)
    with pytest.raises(ModelError, match="spatial factor"):
        VAEConfig.from_official({**official, "spatial_downsample_factor": 16})
    with pytest.raises(ModelError, match="unsupported"):
        VAEConfig.from_official({**official, "act_fn": "gelu"})


def test_dit_latent_layout_round_trip(vae: VideoVAE) -> None:
    z = torch.randn(1, 4, 3, 2, 5, dtype=torch.float64)
    d = vae.to_dit_latent(z)
    assert d.shape == (3, 2, 5, 4)
    assert torch.allclose(d[1, 0, 2], z[0, :, 1, 0, 2] * TINY.scaling_factor)
    assert torch.allclose(vae.from_dit_latent(d), z)


def test_old_attention_key_names_load(vae: VideoVAE) -> None:
    renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    old = {}
    for k, v in vae.state_dict().items():
        for new, legacy in renames.items():
            k = k.replace(f".attentions.0.{new}.", f".attentions.0.{legacy}.")
        old[k] = v
    assert any(".query." in k for k in old) and not any(".to_q." in k for k in old)
    assert set(convert_legacy_attention_keys(old)) == set(vae.state_dict())
    loaded = load_vae(old, TINY)
    x = _clip(5)
    assert _err(loaded.encode(x, WHOLE).mean, vae.encode(x, WHOLE).mean) <= EXACT


def test_load_from_safetensors_file(vae: VideoVAE, tmp_path) -> None:
    from seedvr_desktop.models.loading import save_safetensors

    path = save_safetensors(vae.state_dict(), tmp_path / "vae.safetensors")
    inferred = infer_vae_config(vae.state_dict(), norm_num_groups=4)
    assert inferred == TINY
    loaded = load_vae(path, inferred)
    assert loaded.dtype == torch.float64  # dtype=None keeps the file's dtype
    x = _clip(5)
    assert _err(loaded.encode(x, WHOLE).mean, vae.encode(x, WHOLE).mean) <= EXACT


def test_missing_and_unexpected_keys_are_reported(vae: VideoVAE, caplog) -> None:
    state = dict(vae.state_dict())
    state.pop("decoder.conv_out.bias")
    state["encoder.extra_thing.weight"] = torch.zeros(1)
    with caplog.at_level(logging.WARNING):
        model = load_vae(state, TINY)
    text = caplog.text
    assert "decoder.conv_out.bias" in text and "encoder.extra_thing.weight" in text
    assert model.decoder.conv_out.bias.device.type == "cpu"  # materialised, not left on meta


def test_not_a_vae_is_refused(vae: VideoVAE) -> None:
    state = {k: v for i, (k, v) in enumerate(vae.state_dict().items()) if i % 3}
    with pytest.raises(ModelError, match="keys missing"):
        load_vae(state, TINY)
    with pytest.raises(ModelError, match="DiT checkpoint"):
        load_vae({"blocks.0.attn.proj_qkv.vid.weight": torch.zeros(2, 2)}, TINY)
    wrong = dict(vae.state_dict())
    wrong["encoder.conv_in.weight"] = torch.zeros(9, 3, 3, 3, 3)
    with pytest.raises(ModelError, match="shape mismatch"):
        load_vae(wrong, TINY)
