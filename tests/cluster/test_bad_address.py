"""`--cluster` at an address where no Ray head answers: one stderr line within seconds.

Only loopback: a closed port, a port that accepts and stays silent (Ray's own client retries
such a port forever, printing warnings), and a port where something else answers.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import subprocess_env
from tests.cluster.media import make_cut_clip
from tests.conftest import REPO_ROOT

LIMIT = 5.0  # seconds from start to exit, the interpreter's start-up included


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[int]:
    """A loopback port that accepts connections; `request.param` is what it answers (b"":
    nothing at all)."""
    answer: bytes = request.param
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            if answer:
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def _run_cli(tmp_path: Path, address: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    clip = make_cut_clip(tmp_path / "c.mp4", shots=(8, 8))
    out = tmp_path / "o.mp4"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "seedvr_desktop", "restore", str(clip), "-o", str(out),
         "--engine", "classic", "--cluster", address],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - started
    assert not out.exists()
    assert not list(tmp_path.glob(".*seedvr-work"))
    return seconds, done


def _assert_one_line(seconds: float, done: subprocess.CompletedProcess[str], address: str
                     ) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1, done.stderr
    assert f"cannot reach a Ray cluster at {address}" in lines[0]
    assert seconds < LIMIT, f"{seconds:.1f} s"
    return lines[0]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_closed_port(tmp_path: Path, scheme: str) -> None:
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    _assert_one_line(*_run_cli(tmp_path, address), address)


@pytest.mark.parametrize("listener", [b""], indirect=True)
@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_port_that_stays_silent(tmp_path: Path, listener: int, scheme: str) -> None:
    address = f"{scheme}127.0.0.1:{listener}"
    line = _assert_one_line(*_run_cli(tmp_path, address), address)
    assert "no answer" in line


@pytest.mark.parametrize("listener", [b"HTTP/1.1 400 Bad Request\r\n\r\n"], indirect=True)
def test_a_port_where_something_else_answers(tmp_path: Path, listener: int) -> None:
    address = f"127.0.0.1:{listener}"
    line = _assert_one_line(*_run_cli(tmp_path, address), address)
    assert "not a Ray head node" in line


def test_a_ray_head_passes_the_check(ray_local: str) -> None:
    from seedvr_desktop.cluster.connect import _grpc_problem

    port = int(ray_local.rpartition(":")[2])  # probed on loopback only
    assert _grpc_problem("127.0.0.1", port, 3.0) == ""
