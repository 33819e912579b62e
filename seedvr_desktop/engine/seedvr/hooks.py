"""Hooks on the DiT blocks: a cancel check before every block (cancel within one block's time)
and optional streaming of block weights from CPU memory for GPUs too small for the model."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from seedvr_desktop.errors import Cancelled


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


@contextmanager
def cancel_hooks(model: nn.Module, cancel: threading.Event | None,
                 kinds: tuple[type[nn.Module], ...]) -> Iterator[None]:
    """Check `cancel` before every submodule of the given kinds runs (e.g. each VAE conv), so
    a long VAE slice at high resolution stops within one convolution's time."""
    if cancel is None:
        yield
        return
    handles = [m.register_forward_pre_hook(lambda _m, _a: check_cancel(cancel))
               for m in model.modules() if isinstance(m, kinds)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def dit_block_hooks(dit: nn.Module, cancel: threading.Event | None,
                    stream_to: torch.device | None = None) -> Iterator[None]:
    """Check `cancel` before each DiT block; with `stream_to`, keep block weights on the CPU
    and move each block's weights to the device just for its forward.

    Streaming swaps `param.data` between a CPU master copy and a device copy, so weights never
    travel back to the CPU and the GPU holds one block at a time (plus its successor in flight).
    """
    blocks = getattr(dit, "blocks", None)
    if blocks is None:
        yield
        return
    handles = []
    masters: dict[int, list[tuple[nn.Parameter | Tensor, Tensor]]] = {}
    if stream_to is not None:
        for i, block in enumerate(blocks):
            pin = stream_to.type == "cuda"
            masters[i] = []
            for t in [*block.parameters(), *block.buffers()]:
                master = t.data.to("cpu")
                if pin and not master.is_pinned():
                    master = master.pin_memory()  # pinned: asynchronous copies to the GPU
                t.data = master
                masters[i].append((t, master))

    def before(index: int):
        def hook(module: nn.Module, args: object) -> None:
            check_cancel(cancel)
            if stream_to is not None:
                for t, master in masters[index]:
                    t.data = master.to(stream_to, non_blocking=True)

        return hook

    def after(index: int):
        def hook(module: nn.Module, args: object, output: object) -> None:
            for t, master in masters[index]:
                t.data = master

        return hook

    for i, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(before(i)))
        if stream_to is not None:
            handles.append(block.register_forward_hook(after(i)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        if stream_to is not None:
            for i in masters:
                for t, master in masters[i]:
                    t.data = master
