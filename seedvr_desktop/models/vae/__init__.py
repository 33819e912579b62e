"""The SeedVR causal video VAE (weight-compatible with the official `ema_vae.pth`)."""

from seedvr_desktop.models.vae.config import VAEConfig
from seedvr_desktop.models.vae.loading import build_vae, infer_vae_config, load_vae
from seedvr_desktop.models.vae.model import Posterior, StreamState, VAEOptions, VideoVAE

__all__ = [
    "Posterior",
    "StreamState",
    "VAEConfig",
    "VAEOptions",
    "VideoVAE",
    "build_vae",
    "infer_vae_config",
    "load_vae",
]
