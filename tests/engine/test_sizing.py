"""Output size rules: scale, short side, explicit size; aspect kept; multiples; bad values."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seedvr_desktop.engine.job import SizeRule
from seedvr_desktop.engine.sizing import MAX_SIDE, output_size
from seedvr_desktop.errors import UserError


@pytest.mark.parametrize(
    ("src", "rule", "multiple", "expected"),
    [
        ((854, 480), SizeRule(scale=2.0), 2, (1708, 960)),
        ((640, 480), SizeRule(scale=2.0), 2, (1280, 960)),
        ((719, 481), SizeRule(scale=2.0), 2, (1438, 962)),
        ((719, 481), SizeRule(scale=1.0), 2, (720, 482)),  # odd sizes rounded for 4:2:0
        ((719, 481), SizeRule(scale=2.0), 16, (1440, 960)),
        ((1024, 576), SizeRule(short_side=1080), 2, (1920, 1080)),  # PAL 16:9 display size
        ((576, 1024), SizeRule(short_side=720), 2, (720, 1280)),  # portrait: width is short
        ((320, 240), SizeRule(size=(1000, 500)), 2, (1000, 500)),  # explicit size honoured
        ((320, 240), SizeRule(size=(1001, 501)), 8, (1000, 504)),
        ((320, 240), SizeRule(size=(1280, 0)), 2, (1280, 960)),  # height from the aspect
        ((320, 240), SizeRule(size=(0, 720)), 2, (960, 720)),
        ((3, 2), SizeRule(), 2, (4, 2)),  # tiny source: never below one multiple
    ],
)
def test_rules(src, rule, multiple, expected) -> None:
    assert output_size(*src, rule, multiple=multiple) == expected


def test_default_rule_uses_engine_scale() -> None:
    assert output_size(640, 360, SizeRule(), default_scale=2.0) == (1280, 720)
    assert output_size(640, 360, SizeRule()) == (640, 360)


@pytest.mark.parametrize(
    "rule",
    [
        SizeRule(scale=0.0),
        SizeRule(scale=-1.0),
        SizeRule(scale=float("nan")),
        SizeRule(scale=100.0),
        SizeRule(scale=0.001),  # less than a pixel
        SizeRule(short_side=0),
        SizeRule(short_side=8),
        SizeRule(short_side=20000),
        SizeRule(size=(0, 0)),
        SizeRule(size=(-640, 480)),
        SizeRule(size=(640, 5)),
        SizeRule(size=(640.5, 480)),  # type: ignore[arg-type]
        SizeRule(scale=2.0, short_side=720),  # two rules at once
        SizeRule(scale=16.0),  # 20480 pixels wide: too large
    ],
)
def test_bad_rules_are_user_errors(rule: SizeRule) -> None:
    with pytest.raises(UserError):
        output_size(1280, 720, rule)


def test_zero_source_is_a_user_error() -> None:
    with pytest.raises(UserError):
        output_size(0, 480, SizeRule())


def test_aspect_change_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        output_size(640, 480, SizeRule(size=(1920, 1080)))
    assert "shape" in caplog.text


@given(
    w=st.integers(16, 4000),
    h=st.integers(16, 4000),
    scale=st.floats(0.25, 4.0),
    multiple=st.sampled_from([1, 2, 8, 16]),
)
def test_scale_keeps_aspect_and_multiple(w: int, h: int, scale: float, multiple: int) -> None:
    try:
        ow, oh = output_size(w, h, SizeRule(scale=scale), multiple=multiple)
    except UserError:
        assert max(w, h) * scale > MAX_SIDE - multiple  # only refused when it is too large
        return
    assert ow % multiple == 0 and oh % multiple == 0
    # each side is within half a multiple of the exact value (or at the one-multiple floor)
    assert abs(ow - w * scale) <= multiple / 2 + 1e-6 or ow == multiple
    assert abs(oh - h * scale) <= multiple / 2 + 1e-6 or oh == multiple


def test_default_area_scales_to_the_pixel_area_keeping_aspect() -> None:
    """SeedVR's own inference resizes any input to the 1280x720 area; 480x854 -> 720x1280."""
    size_of = output_size
    assert size_of(854, 480, SizeRule(), multiple=2, default_area=1280 * 720) == (1280, 720)
    assert size_of(1920, 1080, SizeRule(), multiple=2, default_area=1280 * 720) == (1280, 720)
    w, h = size_of(720, 576, SizeRule(), multiple=2, default_area=1280 * 720)
    assert abs(w * h - 1280 * 720) / (1280 * 720) < 0.01 and abs(w / h - 720 / 576) < 0.01
    # An explicit rule still wins over the engine's default.
    assert size_of(720, 576, SizeRule(scale=1.0), default_area=1280 * 720) == (720, 576)
