"""Decoder thread behind scrubbing: exact frames, keyframe-first dragging, proxies, caches."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
import pytest

from seedvr_desktop.engine.preview import preview_window
from seedvr_desktop.media.reader import VideoReader
from seedvr_desktop.ui.frame_cache import LruFrameCache, ProxyStore, proxy_size
from seedvr_desktop.ui.frame_decoder import FrameDecoder, FrameResult
from seedvr_desktop.ui.preview_cache import PreviewCache
from seedvr_desktop.ui.timecode import clock, timecode
from tests.clips import frame_id, make_video


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames, one keyframe every 20: frame 37 needs a decode from frame 20."""
    folder = tmp_path_factory.mktemp("gop")
    return make_video(folder / "gop.mp4", frames=60, size=(128, 96), gop=20, bframes=0).path


class Sink:
    def __init__(self) -> None:
        self.results: queue.Queue[FrameResult] = queue.Queue()
        self.thumbs: queue.Queue[tuple[str, int, np.ndarray]] = queue.Queue()
        self.proxy_done = threading.Event()

    def frame(self, result: FrameResult) -> None:
        self.results.put(result)

    def thumb(self, path: str, index: int, image: np.ndarray) -> None:
        self.thumbs.put((path, index, image))

    def proxy(self, path: str, done: int, total: int) -> None:
        if done >= total:
            self.proxy_done.set()

    def next(self) -> FrameResult:
        return self.results.get(timeout=10)


@pytest.fixture
def decoder():
    sink = Sink()
    dec = FrameDecoder(sink.frame, sink.thumb, None, sink.proxy)
    dec.sink = sink  # type: ignore[attr-defined]
    yield dec
    dec.close()


def _decoded(path: Path, index: int) -> np.ndarray:
    with VideoReader(path) as reader:
        return reader.read(index).image


def test_exact_request_returns_the_decoded_frame(decoder, gop_clip: Path) -> None:
    decoder.request(str(gop_clip), 37)
    result = decoder.sink.next()
    assert (result.index, result.exact, result.full_res) == (37, True, True)
    assert np.array_equal(result.image, _decoded(gop_clip, 37))
    # Stepping back stays inside the frames cached behind the target: no new decode needed.
    assert decoder.cache.get((str(gop_clip), 36)) is not None
    decoder.request(str(gop_clip), 36)
    assert np.array_equal(decoder.sink.next().image, _decoded(gop_clip, 36))


def test_dragging_shows_the_keyframe_first_then_the_exact_frame(decoder, gop_clip: Path) -> None:
    decoder.request(str(gop_clip), 37, dragging=True)
    first = decoder.sink.next()
    assert first.index == 20 and not first.exact  # the GOP's keyframe, one decode
    assert frame_id(first.image) == 20
    settled = decoder.sink.next()  # the mouse rested: the exact frame follows by itself
    assert settled.index == 37 and settled.exact and settled.full_res
    assert settled.token == first.token


def test_proxy_gives_every_frame_exactly_at_low_resolution(decoder, gop_clip: Path) -> None:
    decoder.build_proxy(str(gop_clip))
    assert decoder.sink.proxy_done.wait(20)
    assert decoder.proxies.count(str(gop_clip)) == 60
    decoder.request(str(gop_clip), 53, dragging=True)
    result = decoder.sink.next()
    assert result.exact and not result.full_res and result.index == 53
    assert frame_id(result.image) == 53  # readable after JPEG: it is the right picture
    assert result.latency < 0.5


def test_thumbnails_are_scaled_and_bad_files_report_errors(gop_clip: Path, tmp_path: Path) -> None:
    sink = Sink()
    errors: queue.Queue[tuple[str, str]] = queue.Queue()
    dec = FrameDecoder(sink.frame, sink.thumb, lambda p, m: errors.put((p, m)))
    try:
        dec.request_thumbnail(str(gop_clip), 45, 48)
        path, index, image = sink.thumbs.get(timeout=10)
        assert image.shape == (48, 64, 3) and (path, index) == (str(gop_clip), 45)
        junk = tmp_path / "junk.mp4"
        junk.write_bytes(b"not a video at all" * 100)
        dec.request(str(junk), 0)
        bad_path, message = errors.get(timeout=10)
        assert bad_path == str(junk) and message
        dec.request(str(gop_clip), 5)  # the thread survived the bad file
        assert sink.next().index == 5
    finally:
        dec.close()


def test_lru_cache_evicts_oldest_by_bytes() -> None:
    cache = LruFrameCache(budget_bytes=3 * 100)
    for i in range(3):
        cache.put(i, np.zeros(100, np.uint8))
    assert cache.get(0) is not None  # 0 becomes most recent
    cache.put(3, np.zeros(100, np.uint8))
    assert 1 not in cache and 0 in cache and 3 in cache and cache.nbytes == 300


def test_proxy_size_fits_the_budget_and_store_round_trips() -> None:
    assert proxy_size(1920, 1080, 100, 512 << 20) == (960, 540)
    w, h = proxy_size(1920, 1080, 100_000, 512 << 20)
    assert w * h * 3 / 12 * 100_000 <= 512 << 20 or w == 320
    store = ProxyStore(budget_bytes=1 << 20)
    image = np.zeros((96, 128, 3), np.uint8)
    image[:, :64] = (200, 30, 30)
    assert store.put("a", 0, image)
    back = store.get("a", 0)
    assert back is not None and back.shape == (96, 128, 3)
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 6  # colour order kept


def test_proxies_are_as_wide_as_the_viewer_shows_within_the_budget() -> None:
    budget = 512 << 20
    # A 1280-pixel viewer gets 1280-wide proxies (500 frames * 1280*720*3/12 = 115 MB fits).
    assert proxy_size(1920, 1080, 500, budget, display_width=1280) == (1280, 720)
    # A narrower viewer gets the first width that still covers it, never an upscale.
    assert proxy_size(1920, 1080, 500, budget, display_width=400) == (480, 270)
    # Wider than the source: the source size (1920*1080*3/12*500 = 259 MB fits).
    assert proxy_size(1920, 1080, 500, budget, display_width=2560) == (1920, 1080)
    # A long clip falls back to what fits the budget.
    w, h = proxy_size(1920, 1080, 20_000, budget, display_width=1280)
    assert w < 1280 and w * h * 3 / 12 * 20_000 <= budget
    store = ProxyStore(budget)
    store.display_width = 1280
    assert store.configure("a", 1920, 1080, 500) == (1280, 720)
    assert store.put("a", 0, np.zeros((1080, 1920, 3), np.uint8))
    store.display_width = 640  # the viewer shrank: a clip with stored frames keeps its size
    assert store.configure("a", 1920, 1080, 500) == (1280, 720)
    assert store.get("a", 0).shape == (720, 1280, 3)
    assert store.configure("b", 1920, 1080, 500) == (640, 360)


def test_preview_cache_lookup_ranges_and_invalidation() -> None:
    cache = PreviewCache()
    frames = np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3)
    cache.add("a.mp4", "k1", 10, frames)
    assert np.array_equal(cache.lookup("a.mp4", "k1", 12), frames[2])
    assert cache.lookup("a.mp4", "k2", 12) is None and cache.lookup("a.mp4", "k1", 15) is None
    assert cache.ranges("a.mp4", "k1") == [(10, 15)]
    assert cache.retain({("a.mp4", "k2")}) == 1 and len(cache) == 0


def test_preview_window_stays_inside_the_clip() -> None:
    assert preview_window(20, 9, 0, 48) == (16, 25)
    assert preview_window(1, 9, 0, 48) == (0, 9)
    assert preview_window(47, 9, 0, 48) == (39, 48)
    assert preview_window(12, 33, 10, 20) == (10, 20)


def test_timecode_and_clock() -> None:
    assert timecode(0, 25) == "00:00:00:00"
    assert timecode(25 * 3661 + 7, 25) == "01:01:01:07"
    assert timecode(30, 30000 / 1001) == "00:00:01:00"
    assert clock(75.3) == "1:15.3"
    assert clock(3725) == "1:02:05.0"
