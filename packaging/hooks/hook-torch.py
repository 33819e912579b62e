"""PyInstaller hook for torch: the community hook, minus torch's own tests and developer files.

The hook from pyinstaller-hooks-contrib collects every submodule and every non-Python file of the
torch package. That is the safe default, but a torch wheel carries well over 100 MB that an
application never runs: C++ test executables (`torch/test`, `torch/bin` apart from the shared
memory manager), static libraries, small test libraries in `torch/lib`, and modules of developer
tools (TensorBoard, benchmarks, HIPify).

Rather than re-deriving the community hook (it also finds NVIDIA CUDA wheels and Windows MKL
DLLs, which change between torch releases), this hook runs it and filters its results. Hooks on
the spec's `hookspath` take priority over the community ones, so this one replaces it.
"""

from __future__ import annotations

import fnmatch
import runpy
from pathlib import Path

import _pyinstaller_hooks_contrib
from PyInstaller.utils.hooks import logger

_COMMUNITY_HOOK = (Path(_pyinstaller_hooks_contrib.__file__).parent / "stdhooks"
                   / "hook-torch.py")

# Submodules nothing in an application imports: developer tooling. (Not torch.testing._internal:
# `import torch` itself loads two of its modules, logging_tensor and common_dtype.)
DEV_MODULES = (
    "torch.utils.tensorboard",
    "torch.utils.benchmark",
    "torch.utils.bottleneck",
    "torch.utils.hipify",
)
# Files (paths relative to site-packages, "/" separators) that are tests, tools or build inputs,
# except those in KEEP_FILES: `import torch` looks for torch_shm_manager and fails without it.
KEEP_FILES = ("torch/bin/torch_shm_manager*",)
DEV_FILES = (
    "torch/test/*",
    "torch/bin/*",
    "torch/include/*",
    "torch/share/*",
    "torch/lib/*_test.*",
    "torch/lib/libbackend_with_compiler.*",
    "torch/lib/libaoti_custom_ops.*",
    "torch/lib/*.a",
    "torch/lib/*.lib",
)


def _is_dev_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in DEV_MODULES)


def _is_dev_file(source: str) -> bool:
    path = Path(source).as_posix()
    cut = path.rfind("/torch/")
    relative = path[cut + 1:] if cut >= 0 else path
    if any(fnmatch.fnmatch(relative, pattern) for pattern in KEEP_FILES):
        return False
    return any(fnmatch.fnmatch(relative, pattern) for pattern in DEV_FILES)


_community = runpy.run_path(str(_COMMUNITY_HOOK))

hiddenimports = [m for m in _community.get("hiddenimports", []) if not _is_dev_module(m)]
datas = [(src, dest) for src, dest in _community.get("datas", []) if not _is_dev_file(src)]
binaries = [(src, dest) for src, dest in _community.get("binaries", []) if not _is_dev_file(src)]
excludedimports = [*_community.get("excludedimports", []), *DEV_MODULES]

# Settings of the community hook that only make sense as it wrote them (source kept next to the
# bytecode for TorchScript, no symlinks from torch/lib to the top level on Linux).
for _name in ("module_collection_mode", "warn_on_missing_hiddenimports",
              "bindepend_symlink_suppression"):
    if _name in _community:
        globals()[_name] = _community[_name]

logger.info("hook-torch (SeedVR Desktop): kept %d of %d data files and %d of %d binaries",
            len(datas), len(_community.get("datas", [])), len(binaries),
            len(_community.get("binaries", [])))
