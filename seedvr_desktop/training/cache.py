"""The latent cache: degraded LQ / clean HQ pairs encoded by the VAE once, read every step.

    CACHE/manifest.json        settings, model fingerprint, samples, shape buckets, done sources
    CACHE/text.safetensors     the positive and negative text embeddings (pos, neg)
    CACHE/shard-00000.safetensors ...  per sample: {id}.hq, {id}.hq_std, {id}.lq, {id}.lq_std

Latents are in the DiT layout (T, h, w, 16), already scaled: `mean + std * eps` is a posterior
sample, drawn at training time so every epoch sees fresh VAE noise. Every file is written
atomically and a shard always lands before the manifest that names it, so a killed `prepare`
resumes from the last manifest and never leaves a sample half-written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seedvr_desktop.errors import MediaError, ModelError, UserError
from seedvr_desktop.fsutil import (
    atomic_path,
    atomic_write_text,
    remove_library_temps,
    remove_stale_temps,
)
from seedvr_desktop.training.degrade import degrade_clip, describe, sample_params

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TEXT_FILE = "text.safetensors"
CACHE_VERSION = 1
SHARD_SAMPLES = 64  # samples per shard file: few files, and a lost shard costs little work


@dataclass(frozen=True)
class CacheEntry:
    """One sample of the manifest."""

    id: str
    shard: str
    source: str
    start: int
    frames: int
    size: int
    latent: tuple[int, int, int]  # latent T, h, w
    degradation_seed: int

    @property
    def bucket(self) -> str:
        return "x".join(str(v) for v in self.latent)


@dataclass
class CachedSample:
    """Tensors of one sample, float32 (T, h, w, C)."""

    entry: CacheEntry
    hq: Tensor
    hq_std: Tensor
    lq: Tensor
    lq_std: Tensor


def degradation_seed(seed: int, source: str, start: int, size: int, frames: int) -> int:
    digest = hashlib.blake2b(f"{seed}|{source}|{start}|{size}|{frames}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _write_json(path: Path, data: dict[str, Any]) -> None:
    try:
        atomic_write_text(path, json.dumps(data, indent=1))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _save_tensors(path: Path, tensors: dict[str, Tensor]) -> None:
    from safetensors.torch import save_file

    try:
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    except OSError as exc:  # disk full, read-only folder: the temp is removed, no half file
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder} is not a training cache (no {MANIFEST}; run `train prepare`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is damaged ({exc})") from None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        raise UserError(f"{path} is not a cache of this version; prepare it again")
    return data


# ------------------------------------------------------------------------------ preparing
@dataclass
class Encoder:
    """What `prepare` needs from a model: a VAE, embeddings, a fingerprint, a device."""

    vae: Any  # models.vae.model.VideoVAE
    pos_emb: Tensor
    neg_emb: Tensor
    fingerprint: str
    device: torch.device

    def encode(self, pixels: np.ndarray) -> tuple[Tensor, Tensor]:
        """(T, S, S, 3) [0, 1] -> DiT-layout (mean, std), both (T', S/8, S/8, C) float32 CPU."""
        x = torch.from_numpy(pixels).permute(3, 0, 1, 2)[None] * 2 - 1  # (1, 3, T, H, W)
        post = self.vae.encode(x.to(self.device, self.vae.dtype))
        scale = self.vae.config.scaling_factor
        mean = self.vae.to_dit_latent(post.mean.float())
        std = (torch.exp(0.5 * post.logvar.float()) * scale)[0].permute(1, 2, 3, 0)
        return mean.cpu().contiguous(), std.cpu().contiguous()


def prepare(sources: Sequence[Path], cache: Path, encoder: Encoder, *,
            shapes: Sequence[tuple[int, int]], seed: int = 0, per_clip: int = 4,
            preview: Path | None = None, preview_count: int = 4,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fill (or resume) the cache with samples of every (frames, size) in `shapes`.

    Images give one-frame samples at every size; clips give samples of each shape. Returns the
    manifest. A cache made with other settings or another model is refused, not mixed.
    """
    from seedvr_desktop.training.samples import cut_samples, is_image_path

    cache.mkdir(parents=True, exist_ok=True)
    for temp in cache.glob(".*.tmp"):  # `.NAME.<8 hex>.tmp` temps of a killed run
        remove_stale_temps(cache / temp.name[1:].rsplit(".", 2)[0])
    remove_library_temps(cache)
    settings = {"shapes": sorted([list(s) for s in set(map(tuple, shapes))]), "seed": seed,
                "per_clip": per_clip, "model": encoder.fingerprint}
    manifest = _start_manifest(cache, settings)
    if not (cache / TEXT_FILE).is_file():
        _save_tensors(cache / TEXT_FILE, {"pos": encoder.pos_emb.float().cpu(),
                                          "neg": encoder.neg_emb.float().cpu()})
    done = set(manifest["done_sources"])
    pending: dict[str, Tensor] = {}
    pending_entries: list[dict[str, Any]] = []
    pending_sources: list[str] = []
    sizes = sorted({s for _, s in shapes})
    previews = len(list(preview.glob("*.png"))) if preview and preview.is_dir() else 0
    failures = 0
    for src in sources:
        key = str(src)
        if key in done:
            continue
        cuts = [(1, s) for s in sizes] if is_image_path(src) else list(shapes)
        try:
            for frames, size in cuts:
                for raw in cut_samples(src, size, frames, per_clip):
                    sid = f"{len(manifest['samples']) + len(pending_entries):07d}"
                    dseed = degradation_seed(seed, key, raw.start, size, frames)
                    params = sample_params(dseed)
                    lq_pixels = degrade_clip(raw.pixels, params)
                    hq, hq_std = encoder.encode(raw.pixels)
                    lq, lq_std = encoder.encode(lq_pixels)
                    pending.update({f"{sid}.hq": hq, f"{sid}.hq_std": hq_std,
                                    f"{sid}.lq": lq, f"{sid}.lq_std": lq_std})
                    pending_entries.append({
                        "id": sid, "source": key, "start": raw.start, "frames": frames,
                        "size": size, "latent": list(hq.shape[:3]), "degradation_seed": dseed,
                        "degradation": params.to_json()})
                    if preview is not None and previews < preview_count:
                        _write_preview(preview, sid, raw.pixels, lq_pixels)
                        previews += 1
                    if progress:
                        progress(f"{src.name} @{raw.start} {frames}x{size}: {describe(params)}")
        except (MediaError, OSError) as exc:
            failures += 1
            log.warning("skipping %s: %s", src, exc)
            if progress:
                progress(f"skipped {src.name}: {exc}")
        pending_sources.append(key)
        if len(pending_entries) >= SHARD_SAMPLES:
            _flush(cache, manifest, pending, pending_entries, pending_sources)
    _flush(cache, manifest, pending, pending_entries, pending_sources)
    if not manifest["samples"]:
        raise UserError("no usable samples: every source was unreadable or shorter than "
                        f"{min(f for f, _ in shapes)} frames")
    if failures:
        log.warning("%d sources could not be read", failures)
    return manifest


def _start_manifest(cache: Path, settings: dict[str, Any]) -> dict[str, Any]:
    if (cache / MANIFEST).is_file():
        manifest = read_manifest(cache)
        if manifest["settings"] != settings:
            raise UserError(f"{cache} was prepared with other settings or another model; "
                            "use a new --cache folder")
        log.info("resuming %s: %d samples so far", cache, len(manifest["samples"]))
        return manifest
    return {"version": CACHE_VERSION, "settings": settings, "model": settings["model"],
            "samples": [], "shards": [], "buckets": {}, "done_sources": []}


def _flush(cache: Path, manifest: dict[str, Any], tensors: dict[str, Tensor],
           entries: list[dict[str, Any]], sources: list[str]) -> None:
    if not sources:
        return
    if entries:
        name = f"shard-{len(manifest['shards']):05d}.safetensors"
        _save_tensors(cache / name, tensors)  # lands before the manifest that names it
        for e in entries:
            e["shard"] = name
            manifest["buckets"].setdefault("x".join(map(str, e["latent"])), []).append(e["id"])
        manifest["shards"].append(name)
        manifest["samples"].extend(entries)
    manifest["done_sources"].extend(sources)
    _write_json(cache / MANIFEST, manifest)
    tensors.clear()
    entries.clear()
    sources.clear()


def _write_preview(folder: Path, sid: str, hq: np.ndarray, lq: np.ndarray) -> None:
    from seedvr_desktop.media.images import write_image

    folder.mkdir(parents=True, exist_ok=True)
    mid = hq.shape[0] // 2
    write_image(folder / f"{sid}_lq_hq.png", np.concatenate([lq[mid], hq[mid]], axis=1))


# ------------------------------------------------------------------------------ reading
class LatentCache:
    """Read side of a cache; refuses a cache made with another model."""

    def __init__(self, folder: Path, fingerprint: str | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        made_with = self.manifest.get("model")
        if fingerprint is not None and made_with != fingerprint:
            raise ModelError(f"{self.folder} was prepared with another model ({made_with}, "
                             f"this one is {fingerprint}); run `train prepare` again")
        self.entries = [CacheEntry(e["id"], e["shard"], e["source"], int(e["start"]),
                                   int(e["frames"]), int(e["size"]), tuple(e["latent"]),
                                   int(e["degradation_seed"]))
                        for e in self.manifest["samples"]]
        self._index = {e.id: e for e in self.entries}
        self._handles: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def text(self) -> tuple[Tensor, Tensor]:
        from safetensors.torch import load_file

        t = load_file(str(self.folder / TEXT_FILE))
        return t["pos"], t["neg"]

    def eligible(self, frames: int, size: int) -> list[int]:
        """Indices of samples a (frames, size) stage trains on: its clips and its images."""
        return [i for i, e in enumerate(self.entries)
                if e.size == size and (e.frames == frames or e.frames == 1)]

    def load(self, index: int) -> CachedSample:
        from safetensors import safe_open

        e = self.entries[index]
        handle = self._handles.get(e.shard)
        if handle is None:
            path = self.folder / e.shard
            if not path.is_file():
                raise UserError(f"{path} is missing; the cache is incomplete")
            handle = safe_open(str(path), framework="pt")
            self._handles[e.shard] = handle
        get = handle.get_tensor
        return CachedSample(e, get(f"{e.id}.hq").float(), get(f"{e.id}.hq_std").float(),
                            get(f"{e.id}.lq").float(), get(f"{e.id}.lq_std").float())
