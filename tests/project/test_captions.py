"""Caption text formats (checked by FFmpeg's own parsers via PyAV) and burn-in rendering."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from seedvr_desktop.project import textraster
from seedvr_desktop.project.captions import (
    CaptionBurner,
    caption_problems,
    clip_captions,
    to_ass,
    to_srt,
    to_vtt,
)
from seedvr_desktop.project.model import Caption

CAPTIONS = [
    Caption(0.5, 3.25, "Grandma's 80th, 1994"),
    Caption(4.0, 6.0, "Two lines\nüber <b>&</b>", position="top"),
    Caption(3661.125, 3662.0, "an hour later"),
]


def read_subtitle_file(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue as FFmpeg's demuxer + decoder see them."""
    cues = []
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float(packet.duration * packet.time_base)
            for sub in stream.codec_context.decode2(packet) or []:
                # Dialogue text is the last of 9 comma-separated ASS fields.
                text = sub.ass.decode("utf-8").split(",", 8)[-1]
                cues.append((round(start, 3), round(end, 3), text))
    return cues


@pytest.mark.parametrize(("suffix", "writer"), [(".srt", to_srt), (".vtt", to_vtt)])
def test_sidecars_parse_with_ffmpeg(tmp_path: Path, suffix: str, writer) -> None:
    path = tmp_path / f"captions{suffix}"
    path.write_text(writer(CAPTIONS), "utf-8")
    cues = read_subtitle_file(path)
    assert [(s, e) for s, e, _ in cues] == [(0.5, 3.25), (4.0, 6.0), (3661.125, 3662.0)]
    assert cues[0][2] == "Grandma's 80th, 1994"
    assert "Two lines" in cues[1][2] and "über" in cues[1][2]
    assert cues[2][2] == "an hour later"


def test_vtt_escapes_markup_and_positions(tmp_path: Path) -> None:
    text = to_vtt(CAPTIONS)
    assert text.startswith("WEBVTT\n")
    assert "über &lt;b&gt;&amp;&lt;/b&gt;" in text
    assert "00:00:04.000 --> 00:00:06.000 line:0" in text


def test_srt_keeps_top_position_as_an_tag(tmp_path: Path) -> None:
    path = tmp_path / "c.srt"
    path.write_text(to_srt(CAPTIONS), "utf-8")
    assert "{\\an8}" in read_subtitle_file(path)[1][2]


def test_ass_script_parses(tmp_path: Path) -> None:
    path = tmp_path / "c.ass"
    path.write_text(to_ass(CAPTIONS, 640, 480), "utf-8")
    cues = read_subtitle_file(path)
    expected = [(0.5, 3.25), (4.0, 6.0), (3661.125, 3662.0)]
    # ASS counts centiseconds, so the 3661.125 s start is rounded to either neighbour.
    assert np.allclose([(s, e) for s, e, _ in cues], expected, atol=0.0051, rtol=0)
    assert cues[1][2].startswith("{\\an8}Two lines\\Nüber")


def test_blank_lines_cannot_split_a_cue(tmp_path: Path) -> None:
    path = tmp_path / "c.srt"
    path.write_text(to_srt([Caption(0, 1, "a\n\n\nb"), Caption(1, 2, "c")]), "utf-8")
    assert [c[2] for c in read_subtitle_file(path)] == ["a\\Nb", "c"]


def test_clip_captions_cuts_to_the_duration() -> None:
    out = clip_captions(list(reversed(CAPTIONS)), 5.0)
    assert [(c.start, c.end) for c in out] == [(0.5, 3.25), (4.0, 5.0)]


# ----------------------------------------------------------------------------- burn-in


def _frame(h: int = 240, w: int = 320) -> np.ndarray:
    """Mid-grey with a gentle ramp: (H, W, 3) float32."""
    ramp = np.linspace(0.3, 0.6, w, dtype=np.float32)[None, :, None]
    return np.broadcast_to(ramp, (h, w, 3)).copy()


def test_burned_caption_is_visible_only_in_its_region_and_time() -> None:
    burner = CaptionBurner([Caption(1.0, 2.0, "Grandma 1994")])
    frame = _frame()
    before = burner(0, Fraction(1, 2), frame)
    assert before is frame  # no caption active: untouched
    out = burner(30, Fraction(3, 2), frame)
    diff = np.abs(out - frame).max(axis=2)  # (H, W)
    changed = np.argwhere(diff > 0.1)
    assert len(changed) > 200  # real letters, not a speck
    rows, cols = changed[:, 0], changed[:, 1]
    assert rows.min() > 240 * 0.75  # bottom of the picture
    assert abs((cols.min() + cols.max()) / 2 - 160) < 6  # horizontally centred
    assert cols.max() - cols.min() < 320 * 0.9  # within the margins
    # White letters with a dark outline: both extremes appear.
    region = out[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert region.max() > 0.95 and region.min() < 0.05
    assert np.array_equal(frame, _frame())  # input not modified in place
    assert burner(60, Fraction(2), frame) is frame  # end is exclusive


def test_caption_height_scales_with_the_frame() -> None:
    heights = []
    for h, w in ((240, 320), (480, 640)):
        out = CaptionBurner([Caption(0, 1, "Hg")])(0, Fraction(0), _frame(h, w))
        rows = np.argwhere(np.abs(out - _frame(h, w)).max(axis=2) > 0.1)[:, 0]
        heights.append(rows.max() - rows.min())
    assert 1.7 < heights[1] / heights[0] < 2.3


def test_top_position_and_long_text_wraps() -> None:
    text = "a very long caption that cannot possibly fit on one line of a small frame"
    out = CaptionBurner([Caption(0, 1, text, position="top")])(0, Fraction(0), _frame())
    changed = np.argwhere(np.abs(out - _frame()).max(axis=2) > 0.1)
    assert changed[:, 0].max() < 120  # upper half
    assert changed[:, 1].min() >= 0.04 * 320 and changed[:, 1].max() <= 0.96 * 320
    one_line = CaptionBurner([Caption(0, 1, "short", position="top")])(0, Fraction(0), _frame())
    one_rows = np.argwhere(np.abs(one_line - _frame()).max(axis=2) > 0.1)[:, 0]
    assert np.ptp(changed[:, 0]) > 2 * np.ptp(one_rows)  # several lines


def _ink(out: np.ndarray, frame: np.ndarray) -> np.ndarray:
    return np.abs(out - frame).max(axis=2) > 0.1  # (H, W) pixels the caption changed


def test_builtin_font_draws_without_any_font_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """No font on the machine (font=None, or a lookup that finds nothing): Pillow's own font
    still draws outlined, non-ASCII text, with the same placement."""
    monkeypatch.setattr(textraster, "_candidate_fonts", lambda: [])
    textraster.default_font.cache_clear()
    try:
        assert textraster.default_font().identity == textraster.BUILTIN
        burner = CaptionBurner([Caption(0, 1, "Grandma 1994 über")])
    finally:
        textraster.default_font.cache_clear()
    out = burner(0, Fraction(0), _frame())
    ink = _ink(out, _frame())
    assert ink.sum() > 200
    rows, cols = np.nonzero(ink)
    assert rows.min() > 240 * 0.75 and abs((cols.min() + cols.max()) / 2 - 160) < 6
    assert out.max() > 0.95 and out.min() < 0.05  # white letters, dark outline
    plain = CaptionBurner([Caption(0, 1, "Grandma 1994 über")], font=None)
    assert np.array_equal(plain(0, Fraction(0), _frame()), out)


def test_font_setting_is_used_and_unusable_files_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = textraster.default_font()
    if real.path is None:
        pytest.skip("no font file installed on this machine")
    bad = tmp_path / "broken.ttf"
    bad.write_bytes(b"not a font")
    monkeypatch.setenv(textraster.FONT_ENV, str(bad))
    textraster.default_font.cache_clear()
    try:
        assert textraster.default_font().path != str(bad)  # skipped, next candidate used
        monkeypatch.setenv(textraster.FONT_ENV, real.path)
        textraster.default_font.cache_clear()
        assert textraster.default_font().path == real.path
    finally:
        textraster.default_font.cache_clear()


def test_fingerprint_names_captions_and_font() -> None:
    caps = [Caption(0, 1, "Grandma")]
    a = CaptionBurner(caps, font=None).fingerprint
    assert a == CaptionBurner(list(caps), font=False).fingerprint  # stable
    assert a.startswith("captions:")
    assert a != CaptionBurner([Caption(0, 1, "Grandpa")], font=None).fingerprint
    assert a != CaptionBurner(caps, font=None, time_offset=1.0).fingerprint
    if textraster.default_font().path is not None:
        assert a != CaptionBurner(caps).fingerprint  # another font draws other pixels


def test_glyphs_have_holes_and_accents() -> None:
    font = textraster.default_font()
    for face in (font, None):  # the system font and Pillow's built-in one
        mask = textraster.render_line("O", 80, face)  # (H, W) coverage
        rows, cols = np.nonzero(mask > 0.5)
        cy, cx = (rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2
        assert mask[cy, cx] < 0.1  # the counter of the O is empty...
        assert mask[cy, cols.min() + 2] > 0.9  # ...and its left stroke is solid
        # The accent adds ink above the top of the base letter; line height is the same.
        plain = textraster.render_line("e", 80, face)
        accented = textraster.render_line("é", 80, face)
        assert plain.shape[0] == accented.shape[0]
        top = np.nonzero(plain.max(axis=1) > 0.5)[0].min()
        assert accented[: top - 2].max() > 0.9 and plain[: top - 2].max() < 0.1
        assert textraster.text_width("WWW", 40, face) > textraster.text_width("iii", 40, face)


def test_captions_outside_the_clip_or_empty_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 14, item 17: such captions were dropped at render without a word."""
    caps = [Caption(0, 1, "kept"), Caption(1, 2, "  \n "), Caption(6, 7, "late"),
            Caption(4, 9, "long")]
    problems = caption_problems(caps, 5.0)
    assert len(problems) == 3
    assert "caption 2 (1-2 s) has no text, so nothing is shown" in problems[0]
    assert "starts after the clip ends (5 s) and is left out" in problems[2]
    assert "cut at 5 s" in problems[1]
    with caplog.at_level("WARNING"):
        out = clip_captions(caps, 5.0)
    assert [(c.start, c.end) for c in out] == [(0, 1), (1, 2), (4, 5.0)]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == problems
    assert caption_problems(caps[:1], 5.0) == []
