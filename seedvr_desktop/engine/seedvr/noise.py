"""Position-keyed noise: the same source frame gets the same noise in every chunk and window.

Every latent frame's noise comes from its own generator seeded by (job seed, purpose, absolute
index of the last source frame it covers). A resumed job, a job re-chunked after an out-of-memory
retry and two overlapping windows therefore see identical noise; it is drawn on the CPU so it
does not depend on the device either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor


def _key_seed(seed: int, tag: str, key: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{tag}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def keyed_noise(seed: int, tag: str, keys: Sequence[int], frame_shape: Sequence[int]) -> Tensor:
    """(len(keys), *frame_shape) standard normal float32 noise, one generator per key, CPU."""
    out = torch.empty((len(keys), *frame_shape), dtype=torch.float32)
    gen = torch.Generator(device="cpu")
    for i, key in enumerate(keys):
        gen.manual_seed(_key_seed(seed, tag, key))
        out[i] = torch.randn(tuple(frame_shape), generator=gen, dtype=torch.float32)
    return out
