"""CPU workers share out the cores of a one-machine cluster: a lone worker computes on all."""

from __future__ import annotations

import pytest

from seedvr_desktop.cluster.connect import ClusterSession

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.mark.parametrize(("workers", "share"), [(1, 2), (2, 1), (None, 1)])
def test_each_cpu_worker_gets_its_share_of_the_cores(workers: int | None, share: int) -> None:
    import ray

    with ClusterSession("local", workers) as session:
        handles = session.workers(False)
        assert len(handles) == (workers or 2)
        assert session._cpu_share == share
        assert ray.get([h.actor.hello.remote() for h in handles])  # all of them scheduled
