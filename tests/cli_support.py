"""The environment a CLI subprocess needs to import this checkout (log and config folders come
from the per-test isolation in conftest)."""

from __future__ import annotations

import os

from tests.conftest import REPO_ROOT


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env
