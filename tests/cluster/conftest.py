"""One local Ray per test module (starting Ray costs seconds on the 2-core machine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seedvr_desktop.engine import plan as job_planning


@pytest.fixture(scope="module")
def ray_local() -> Iterator[str]:
    """A 2-CPU local Ray with a small object store; yields its GCS address."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20,
             log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture
def short_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of about 0.4 s (10 frames at 25 fps, at least one chunk): several per clip."""
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS", 0.4)
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS_GENERATIVE", 0.4)
