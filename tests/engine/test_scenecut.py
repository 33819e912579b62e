"""Scene cut detection: hard cuts found; motion, fades, dissolves and noise left alone."""

from __future__ import annotations

import numpy as np
import pytest

from seedvr_desktop.engine.scenecut import CutDetector, _thumbnail, content_score, detect_cuts
from tests.engine.classic_material import add_noise, render_clip


@pytest.fixture(scope="module")
def shots() -> list[np.ndarray]:
    """Three different 20-frame shots with a panning camera and moving objects."""
    return [render_clip(160, 120, 20, seed=s) for s in (1, 2, 3)]


def test_hard_cuts_are_found(shots: list[np.ndarray]) -> None:
    clip = np.concatenate(shots)
    assert detect_cuts(clip) == [20, 40]


def test_streaming_feed_answers_per_frame(shots: list[np.ndarray]) -> None:
    clip = np.concatenate(shots)
    detector = CutDetector()
    flags = [detector.feed(i, f) for i, f in enumerate(clip)]
    assert [i for i, f in enumerate(flags) if f] == [20, 40] == detector.cuts
    with pytest.raises(ValueError):
        detector.feed(3, clip[3])  # out of order


def test_input_dtypes_agree(shots: list[np.ndarray]) -> None:
    clip = np.concatenate(shots[:2])
    as_u8 = np.round(clip * 255).astype(np.uint8)
    as_u16 = as_u8.astype(np.uint16) * 257
    assert detect_cuts(clip) == detect_cuts(as_u8) == detect_cuts(as_u16) == [20]


def test_motion_is_not_a_cut(shots: list[np.ndarray]) -> None:
    for shot in shots:
        assert detect_cuts(shot) == []


def test_fade_through_black_and_dissolve_are_not_cuts(shots: list[np.ndarray]) -> None:
    a, b = shots[0], shots[1]
    ramp = np.linspace(1.0, 0.0, 10, dtype=np.float32)[:, None, None, None]
    fade = np.concatenate([a[:10] * ramp, b[:10] * ramp[::-1]])
    assert detect_cuts(fade) == []
    t = np.linspace(0.0, 1.0, 20, dtype=np.float32)[:, None, None, None]
    dissolve = a * (1.0 - t) + b * t
    assert detect_cuts(dissolve) == []


def test_noise_is_not_a_cut_but_cuts_survive_noise(shots: list[np.ndarray]) -> None:
    still = add_noise(np.repeat(shots[0][:1], 20, axis=0), sigma=25.0, seed=3)
    assert detect_cuts(still) == []
    noisy = add_noise(np.concatenate(shots), sigma=20.0, seed=4)
    assert detect_cuts(noisy) == [20, 40]


def test_min_scene_length_suppresses_flashes(shots: list[np.ndarray]) -> None:
    a, b = shots[0], shots[1]
    clip = np.concatenate([a[:12], b[12:14], a[14:]])  # a two-frame flash of another shot
    assert detect_cuts(clip) == [12]
    assert detect_cuts(clip, min_scene_length=1) == [12, 14]


def test_cut_on_second_frame_and_score_scale(shots: list[np.ndarray]) -> None:
    clip = np.concatenate([shots[0][:1], shots[1]])
    assert detect_cuts(clip) == [1]
    black = _thumbnail(np.zeros((36, 64, 3), np.float32))
    white = _thumbnail(np.ones((36, 64, 3), np.float32))
    assert content_score(black, black) == 0.0
    assert content_score(black, white) == pytest.approx(255.0 / 3.0, rel=0.01)
