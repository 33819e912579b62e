"""Every fixed vocabulary a user can choose from, defined once.

The CLI's `choices=`, the project file's validation, the GUI's combo boxes and the engines all
read these tuples, so adding a colour fix or a precision is one edit here (plus the code that
implements it). A leaf module: it imports nothing of ours, so any layer may use it.
"""

from __future__ import annotations

# Video codecs we write (media.codecs.CODECS holds their encoder facts, keyed by these names).
VIDEO_CODECS = ("h264", "h265", "prores", "ffv1", "png")
CONTAINERS = ("mp4", "mkv", "mov")
BIT_DEPTHS = (8, 10, 16)
AUDIO_MODES = ("copy", "transcode", "none")

# SeedVR colour correction of the restored frames against the input (models.color_fix).
COLOR_FIXES = ("wavelet", "adain", "lab", "none")
DEFAULT_COLOR_FIX = "wavelet"

# Model precision: "auto" picks bf16 where the device computes it natively, else fp16 / fp32.
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "cpu", "mps")
# Where SeedVR's DiT weights wait while they are not computing: "auto" lets the memory planner
# decide; "dit" moves the DiT to host RAM during the VAE stages; "stream" also streams its
# blocks from host RAM one at a time; "none" keeps everything on the device.
OFFLOAD_MODES = ("auto", "none", "dit", "stream")

# Captions: how a project's captions reach the export, and where burned-in text sits.
CAPTION_MODES = ("none", "soft", "burned", "sidecar")
CAPTION_POSITIONS = ("bottom", "top", "middle")
SIDECAR_FORMATS = ("srt", "vtt")
SOFT_SUBTITLE_FORMATS = ("auto", "srt", "ass")
