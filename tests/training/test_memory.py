from __future__ import annotations

import torch

from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.training.memory import LiveStorages, measure
from tests.engine.seedvr_tiny import TINY_DIT_V2


def test_live_storages_counts_peak_not_views() -> None:
    with LiveStorages() as mode:
        a = torch.empty(1000, device="meta")  # 4000 bytes
        v = a.view(10, 100)  # a view: no new storage
        b = torch.empty(500, device="meta")
        del a, v
        c = torch.empty(10, device="meta")
        del b, c
    assert mode.peak() == 6000
    assert mode.peak() >= 4000 + 40


def test_measure_full_vs_lora_on_a_tiny_config() -> None:
    cfg = DiTConfig.from_official(TINY_DIT_V2)
    full = measure(cfg, 5, 64, txt_len=7)
    lora = measure(cfg, 5, 64, lora_rank=4, txt_len=7)
    no_ckpt = measure(cfg, 5, 64, txt_len=7, checkpointing=False)
    assert full.trainable == full.params > lora.trainable > 0
    assert full.grads_optimizer_bytes == 16 * full.params
    assert lora.total_bytes < full.total_bytes
    assert 0 < full.activation_bytes <= no_ckpt.activation_bytes
    bigger = measure(cfg, 9, 128, txt_len=7)
    assert bigger.activation_bytes > 2 * full.activation_bytes
