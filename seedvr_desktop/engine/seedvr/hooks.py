"""Hooks on the DiT blocks: a cancel check before every block (cancel within one block's time)
and optional streaming of block weights from CPU memory for GPUs too small for the model.

Streaming keeps every block's weights in one host arena (one allocation, pinned in place with
`cudaHostRegister` on CUDA, so the pinned bytes are the streamed bytes rather than the caching
host allocator's power-of-two rounding of each tensor) and copies them block by block into a
ring of two block-sized device buffers. On CUDA the copy of block i+1 runs on a side stream
while block i computes; events order the copy after the block that last used the buffer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seedvr_desktop.errors import Cancelled

log = logging.getLogger(__name__)

ALIGN = 256  # bytes: every tensor view in the arena starts aligned (any dtype, vector loads)
# Smaller buffers (RoPE frequencies) are not streamed: they stay where they are, so the RoPE
# frequency key (read once per tensor) is not re-read from the device for every block.
RESIDENT_BUFFER_BYTES = 1 << 20


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


@dataclass(frozen=True)
class _Slot:
    """Where one streamed tensor lives inside its block's span of the arena."""

    tensor: Tensor  # the parameter or buffer whose `.data` is swapped
    offset: int  # bytes from the start of the block's span
    nbytes: int


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def streamed_tensors(block: nn.Module) -> list[Tensor]:
    """The tensors of a block that are streamed: parameters and all but the tiny buffers."""
    out: list[Tensor] = list(block.parameters())
    for b in block.buffers():
        if b.numel() * b.element_size() >= RESIDENT_BUFFER_BYTES:
            out.append(b)
    return out


def arena_layout(blocks: nn.ModuleList | list[nn.Module]) -> tuple[list[int], list[int]]:
    """(start offset, span bytes) of each block in the arena; the arena holds their sum."""
    starts, spans, pos = [], [], 0
    for block in blocks:
        span = sum(_aligned(t.numel() * t.element_size()) for t in streamed_tensors(block))
        starts.append(pos)
        spans.append(span)
        pos += span
    return starts, spans


class BlockStreamer:
    """DiT blocks kept in a host arena and copied to the device one block ahead of use.

    Built once per engine (the arena is the blocks' home in host memory from then on); used
    through `dit_block_hooks`. `host_bytes` is what is pinned (on CUDA), `device_bytes` the
    two block buffers on the device.
    """

    def __init__(self, dit: nn.Module, device: torch.device,
                 host: torch.device | str = "cpu") -> None:
        blocks = dit.blocks
        assert isinstance(blocks, nn.ModuleList)
        self.dit, self.device = dit, torch.device(device)
        self.host = torch.device(host)
        starts, spans = arena_layout(blocks)
        self.starts, self.spans = starts, spans
        self.host_bytes = sum(spans)
        self.slot_bytes = max(spans) if spans else 0
        self.arena = torch.empty(self.host_bytes, dtype=torch.uint8, device=self.host)
        self.pinned = self._pin(self.arena)
        self.layout: list[list[_Slot]] = []
        for block, start in zip(blocks, starts):
            slots, pos = [], 0
            for t in streamed_tensors(block):
                n = t.numel() * t.element_size()
                view = self._view(self.arena, start + pos, t)
                if not t.data.is_meta or view.is_meta:
                    view.copy_(t.data)
                t.data = view
                slots.append(_Slot(t, pos, n))
                pos += _aligned(n)
            self.layout.append(slots)
        n_slots = 2 if len(spans) > 1 else 1
        self.ring = [torch.empty(self.slot_bytes, dtype=torch.uint8, device=self.device)
                     for _ in range(n_slots)]
        self.device_bytes = n_slots * self.slot_bytes
        cuda = self.device.type == "cuda" and torch.cuda.is_available()
        self.copy_stream = torch.cuda.Stream(self.device) if cuda else None
        self.copied: list[torch.cuda.Event | None] = [None] * len(spans)
        self.freed: list[torch.cuda.Event | None] = [None] * n_slots
        self.loaded: list[int] = [-1] * n_slots  # block index whose weights each slot holds

    @staticmethod
    def _view(buffer: Tensor, offset: int, like: Tensor) -> Tensor:
        # Outside inference mode: a parameter's `.data` cannot be set to an inference tensor.
        n = like.numel() * like.element_size()
        with torch.inference_mode(False):
            return buffer[offset:offset + n].view(like.dtype).view(like.shape)

    def _pin(self, arena: Tensor) -> bool:
        """Page-lock the arena in place (exact size); unpinned copies still work, slower."""
        if self.device.type != "cuda" or not torch.cuda.is_available() or not arena.numel():
            return False
        try:
            rc = torch.cuda.cudart().cudaHostRegister(arena.data_ptr(), arena.numel(), 0)
        except (RuntimeError, AttributeError) as exc:  # pragma: no cover - CUDA only
            log.info("cannot pin the block arena (%s); streaming unpinned", exc)
            return False
        ok = int(rc) == 0 if not isinstance(rc, tuple) else int(rc[0]) == 0
        if not ok:  # pragma: no cover - CUDA only
            log.info("cudaHostRegister refused the block arena; streaming unpinned")
        return ok

    def close(self) -> None:
        if self.pinned:  # pragma: no cover - CUDA only
            torch.cuda.cudart().cudaHostUnregister(self.arena.data_ptr())
            self.pinned = False

    # ------------------------------------------------------------------ per block
    def _issue(self, index: int) -> None:
        """Start copying block `index` into its ring slot (on the side stream on CUDA)."""
        if index >= len(self.spans):
            return
        slot = index % len(self.ring)
        if self.loaded[slot] == index:
            return
        src = self.arena[self.starts[index]:self.starts[index] + self.spans[index]]
        dst = self.ring[slot][:self.spans[index]]
        if self.copy_stream is None:
            dst.copy_(src)
        else:  # pragma: no cover - CUDA only
            freed = self.freed[slot]
            with torch.cuda.stream(self.copy_stream):
                if freed is not None:
                    self.copy_stream.wait_event(freed)  # the block that used this slot is done
                dst.copy_(src, non_blocking=self.pinned)
                event = torch.cuda.Event()
                event.record(self.copy_stream)
                self.copied[index] = event
        self.loaded[slot] = index

    def before(self, index: int) -> None:
        """Make block `index` resident and start fetching block `index + 1`."""
        self._issue(index)
        slot = index % len(self.ring)
        event = self.copied[index]
        if event is not None:  # pragma: no cover - CUDA only
            torch.cuda.current_stream(self.device).wait_event(event)
            self.copied[index] = None
        for s in self.layout[index]:
            s.tensor.data = self._view(self.ring[slot], s.offset, s.tensor)
        self._issue(index + 1)

    def after(self, index: int) -> None:
        """Point the block back at its host copy; mark its ring slot reusable."""
        slot = index % len(self.ring)
        if self.copy_stream is not None:  # pragma: no cover - CUDA only
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.device))
            self.freed[slot] = event
        start = self.starts[index]
        for s in self.layout[index]:
            s.tensor.data = self._view(self.arena, start + s.offset, s.tensor)

    def reset(self) -> None:
        """Forget which block each slot holds (a new DiT pass starts at block 0)."""
        self.loaded = [-1] * len(self.ring)


@contextmanager
def dit_block_hooks(dit: nn.Module, cancel: threading.Event | None,
                    streamer: BlockStreamer | None = None) -> Iterator[None]:
    """Check `cancel` before each DiT block; with a `streamer`, bring each block's weights to
    the device just for its forward (and the next block's weights meanwhile)."""
    blocks = getattr(dit, "blocks", None)
    if blocks is None:
        yield
        return
    handles = []

    def before(index: int):
        def hook(module: nn.Module, args: object) -> None:
            check_cancel(cancel)
            if streamer is not None:
                streamer.before(index)

        return hook

    def after(index: int):
        def hook(module: nn.Module, args: object, output: object) -> None:
            if streamer is not None:
                streamer.after(index)

        return hook

    for i, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(before(i)))
        if streamer is not None:
            handles.append(block.register_forward_hook(after(i)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        if streamer is not None:
            streamer.reset()
            for i in range(len(streamer.layout)):
                streamer.after(i)
