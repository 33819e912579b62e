"""VAE parity against the official code's outputs (`../shared/parity/*.pt`, key `vae`).

Every vector file and every case in it is checked: posterior mean/log-variance/std and the
sampled latent (from the file's own eps) at 1e-5, the decode of the posterior mean at 1e-4. Each
official mode is run with the matching settings of our implementation (whole clip; official
slicing with 0.5 GiB limits; tiny limits that force spatial tiling and chunked GroupNorm), so the
chunked code paths are held to the same tolerance as the plain one.
"""

from __future__ import annotations

import functools

import pytest
import torch

from seedvr_desktop.models.vae import blocks, causal_conv
from seedvr_desktop.models.vae.config import VAEConfig
from seedvr_desktop.models.vae.model import VAEOptions, VideoVAE
from tests.models.parity_data import load_parity, parity_dir, parity_file_ids, parity_files

POSTERIOR_TOL = 1e-5
DECODE_TOL = 1e-4

MODE_OPTIONS = {
    "plain": VAEOptions(encode_slice=None, decode_slice=None),
    "inference_settings": VAEOptions.official(),
    # Small enough that the large convs tile (a few tiles each) and every GroupNorm chunks.
    "tiny_limits": VAEOptions(
        encode_slice=4, decode_slice=1, conv_max_bytes=262_144, norm_max_bytes=4_096
    ),
}



@functools.lru_cache(maxsize=4)
def _model(name: str) -> tuple[VideoVAE, dict]:
    data = load_parity(parity_dir() / name)["vae"]
    model = VideoVAE(VAEConfig.from_official(data["config"])).eval()
    model.load_state_dict(data["state_dict"], strict=True)
    return model, data


def _max_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.numel() == ref.numel(), f"shape {tuple(ours.shape)} vs {tuple(ref.shape)}"
    return (ours.reshape(ref.shape).double() - ref.double()).abs().max().item()


def _check_case(model: VideoVAE, case: dict, options: VAEOptions) -> dict[str, float]:
    post = model.encode(case["input"], options)
    errors = {
        "posterior_mean": _max_err(post.mean, case["posterior_mean"]),
        "posterior_logvar": _max_err(post.logvar, case["posterior_logvar"]),
        "posterior_std": _max_err(post.std, case["posterior_std"]),
        "z_sample": _max_err(model.sample(post, noise=case["eps"]), case["z_sample"]),
    }
    decoded = model.decode(case["posterior_mean"], options)
    errors["decoded_from_mean"] = _max_err(decoded, case["decoded_from_mean"])
    return errors


def _assert_within(errors: dict[str, float], label: str) -> None:
    for key, err in errors.items():
        tol = DECODE_TOL if key.startswith("decoded") else POSTERIOR_TOL
        assert err <= tol, f"{label} {key}: max abs error {err:.3e} > {tol:.0e}"


def test_parity_files_present() -> None:
    """Locally a skip without the shared folder; on CI (CI=true) its absence fails."""
    files = parity_files()
    assert files
    for path in files:
        assert "vae" in load_parity(path), f"{path.name} has no VAE section"


def _case_params() -> list:
    """(file, mode, kind) of every VAE case in every vector file, read at collection time so a
    file with new modes or inputs gets its own test ids (an absent folder gives none; then
    `test_parity_files_present` reports it)."""
    params = []
    for name in parity_file_ids():
        cases = load_parity(parity_dir() / name).get("vae", {}).get("cases", {})
        for mode, kinds in sorted(cases.items()):
            params.extend(
                pytest.param(name, mode, kind, id=f"{name}-{mode}-{kind}") for kind in sorted(kinds)
            )
    return params


@pytest.mark.parametrize(("name", "mode", "kind"), _case_params())
def test_vae_matches_official(name: str, mode: str, kind: str, monkeypatch) -> None:
    """Unknown future modes run with the default (sliced, unlimited) settings: all are exact."""
    model, data = _model(name)
    case = data["cases"][mode][kind]
    options = MODE_OPTIONS.get(mode, VAEOptions())
    calls = {"tiled": 0, "chunked_norm": 0}
    tile, chunks = causal_conv.CausalConv3d._conv_tiled, blocks._largest_divisor_at_most

    def counting_tile(self, *args, **kwargs):
        calls["tiled"] += 1
        return tile(self, *args, **kwargs)

    def counting_chunks(*args):
        calls["chunked_norm"] += 1
        return chunks(*args)

    monkeypatch.setattr(causal_conv.CausalConv3d, "_conv_tiled", counting_tile)
    monkeypatch.setattr(blocks, "_largest_divisor_at_most", counting_chunks)
    errors = _check_case(model, case, options)
    _assert_within(errors, f"{name} {mode}/{kind}")
    if mode == "tiny_limits":  # the chunked code paths must really have run
        assert calls["tiled"] > 0 and calls["chunked_norm"] > 0, calls
