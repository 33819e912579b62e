"""No device->host synchronisation per block or per DiT call: the RoPE frequency key is kept on
the host across device moves, and shapes given as Python ints (or CPU tensors) are never read
back from the device.

This machine has no GPU, so the meta device stands in for one: a meta tensor has no values, so
any read back (`.tolist()`, `.item()`, `.cpu()`, `bool()`) fails. On a CUDA machine the same
forward also runs under a counter of reads of CUDA tensors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import Tensor

from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.dit.model import NaDiT
from seedvr_desktop.models.dit.rope import Rope3d
from seedvr_desktop.models.loading import build_dit
from tests.engine.seedvr_tiny import TINY_DIT_V1, TINY_DIT_V2

READS = ("tolist", "item", "cpu", "numpy", "__bool__", "__int__", "__float__")


def _tiny(arch: str, layers: int) -> NaDiT:
    kw = dict(TINY_DIT_V2 if arch == "v2" else TINY_DIT_V1)
    kw.update(num_layers=layers, block_type=["mmdit_sr"] * layers,
              window=[[4, 3, 3]] * layers,
              window_method=[("720pwin_by_size_bysize", "720pswin_by_size_bysize")[i % 2]
                             for i in range(layers)])
    torch.manual_seed(0)
    return build_dit(DiTConfig.from_official(kw), device="cpu")


@contextmanager
def count_reads(device_only: bool) -> Iterator[list[str]]:
    """Count Tensor reads to the host (of non-CPU tensors only when `device_only`)."""
    calls: list[str] = []
    saved = {name: getattr(Tensor, name) for name in READS}

    def wrap(name: str):  # type: ignore[no-untyped-def]
        real = saved[name]

        def counted(self: Tensor, *a: object, **k: object) -> object:
            if not device_only or self.device.type != "cpu":
                calls.append(name)
            return real(self, *a, **k)

        return counted

    for name in READS:
        setattr(Tensor, name, wrap(name))
    try:
        yield calls
    finally:
        for name, fn in saved.items():
            setattr(Tensor, name, fn)


def _inputs(device: str, host_shapes: bool):  # type: ignore[no-untyped-def]
    grid, txt_len = (3, 8, 12), 5
    g = torch.Generator().manual_seed(1)
    vid = torch.randn(grid[0] * grid[1] * grid[2], 33, generator=g).to(device)
    txt = torch.randn(txt_len, 32, generator=g).to(device)
    t = torch.tensor([500.0]).to(device)
    if host_shapes:
        return vid, txt, [grid], [txt_len], t
    # What the engine passes (chunk.py): CPU tensors, read on the host without a sync.
    return vid, txt, torch.tensor([grid]), torch.tensor([[txt_len]]), t


@pytest.mark.parametrize("arch", ["v2", "v1"])
def test_forward_on_a_device_without_host_reads(arch: str) -> None:
    """Moved to a device whose values cannot be read back, the DiT still runs: no RoPE key,
    shape or anything else is read from the device (before: `.cpu().tolist()` of the RoPE
    frequencies in every block after every device move)."""
    dit = _tiny(arch, 3)
    ref = dit(*_inputs("cpu", host_shapes=True))
    dit.to("meta")
    assert all(m.rope.freqs.is_meta for m in dit.modules() if isinstance(m, Rope3d))
    with count_reads(device_only=True) as reads:
        out = dit(*_inputs("meta", host_shapes=False))
    assert reads == [] and out.is_meta and out.shape == ref.shape


def test_host_reads_do_not_grow_with_depth() -> None:
    """Even on the CPU, the first call of a fresh model reads nothing per block; with shapes
    as ints it reads nothing at all, with CPU shape tensors a constant two (the shapes)."""
    counts = {}
    for layers in (2, 5):
        dit = _tiny("v2", layers)
        for host in (True, False):
            dit.clear_cache()
            with count_reads(device_only=False) as reads:
                dit(*_inputs("cpu", host_shapes=host))
            counts[layers, host] = len(reads)
    assert counts[2, True] == counts[5, True] == 0
    assert counts[2, False] == counts[5, False] <= 2


def test_int_shapes_give_the_same_result_and_bad_ones_are_refused() -> None:
    dit = _tiny("v2", 2)
    a = dit(*_inputs("cpu", host_shapes=True))
    b = dit(*_inputs("cpu", host_shapes=False))
    assert torch.equal(a, b)
    vid, txt, _, _, t = _inputs("cpu", host_shapes=True)
    with pytest.raises(ValueError, match="vid_shape"):
        dit(vid, txt, [(3, 8)], [5], t)
    with pytest.raises(ValueError, match="txt_shape"):
        dit(vid, txt, [(3, 8, 12)], [5, 5], t)


def test_rope_key_follows_in_place_changes_and_survives_moves() -> None:
    dit = _tiny("v2", 2)
    rope = next(m for m in dit.modules() if isinstance(m, Rope3d))
    key = rope.freq_key()
    dit.to(torch.bfloat16)  # the frequencies stay float32, the key stays
    assert rope.rope.freqs.dtype == torch.float32 and rope.freq_key() == key
    rope.rope.freqs.mul_(2.0)  # changed in place: the key is read again
    assert rope.freq_key() == tuple(2.0 * v for v in key)
    state = {k: v.clone() for k, v in rope.rope.state_dict().items()}
    state["freqs"] = state["freqs"] / 2
    rope.rope.load_state_dict(state)
    assert rope.freq_key() == pytest.approx(key)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_forward_reads_nothing_back() -> None:  # pragma: no cover - GPU machines
    dit = _tiny("v2", 3).to("cuda", torch.bfloat16)
    dit(*_inputs("cuda", host_shapes=False))  # first call builds the plans
    with count_reads(device_only=True) as reads:
        dit(*_inputs("cuda", host_shapes=False))
    assert reads == []
