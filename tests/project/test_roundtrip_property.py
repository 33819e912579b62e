"""Property-based round trips: any valid project survives save + load unchanged."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seedvr_desktop.project.model import (
    AUDIO_MODES,
    CAPTION_MODES,
    CAPTION_POSITIONS,
    COLOR_FIX_MODES,
    CONTAINERS,
    PRECISIONS,
    SIDECAR_FORMATS,
    SOFT_SUBTITLE_FORMATS,
    VIDEO_CODECS,
    Caption,
    Clip,
    ExportSettings,
    Fingerprint,
    MediaRef,
    ProbeSummary,
    Project,
    RestoreSettings,
)
from seedvr_desktop.project.serialize import dumps_project, loads_project

# Any Unicode text JSON can carry, minus lone surrogates (not encodable as UTF-8).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
name_part = st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="/\\\0"),
                    min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), finite, text)


@st.composite
def captions(draw: st.DrawFn) -> Caption:
    start = draw(st.floats(0, 3600, allow_nan=False))
    length = draw(st.floats(0.001, 60, allow_nan=False))
    return Caption(
        start=start,
        end=start + length,
        text=draw(text.filter(str.strip)),  # an empty caption is dropped on load, by design
        position=draw(st.sampled_from(CAPTION_POSITIONS)),
        size=draw(st.floats(0.01, 0.5)),
        color="#" + draw(st.text("0123456789abcdefABCDEF", min_size=6, max_size=6)),
        outline=draw(st.booleans()),
    )


@st.composite
def restore_settings(draw: st.DrawFn) -> RestoreSettings:
    rule = draw(st.sampled_from(["none", "scale", "short_side", "size"]))
    return RestoreSettings(
        engine=draw(st.sampled_from(["auto", "none", "classic", "seedvr2-3b"])),
        model=draw(st.none() | text),
        scale=draw(st.floats(0.1, 16)) if rule == "scale" else None,
        short_side=draw(st.integers(16, 8192)) if rule == "short_side" else None,
        size=(draw(st.integers(16, 4096)), draw(st.integers(16, 4096))) if rule == "size" else None,
        color_fix=draw(st.sampled_from(COLOR_FIX_MODES)),
        seed=draw(st.integers(0, 2**63)),
        chunk_length=draw(st.none() | st.integers(1, 500)),
        overlap=draw(st.none() | st.integers(0, 64)),
        precision=draw(st.sampled_from(PRECISIONS)),
        strength=draw(st.none() | finite),
        extra=draw(st.dictionaries(text, scalar, max_size=3)),
    )


@st.composite
def export_settings(draw: st.DrawFn) -> ExportSettings:
    return ExportSettings(
        container=draw(st.sampled_from(CONTAINERS)),
        codec=draw(st.sampled_from(VIDEO_CODECS)),
        crf=draw(st.none() | st.integers(0, 63)),
        bitrate_kbps=draw(st.none() | st.integers(1, 100_000)),
        preset=draw(st.none() | text),
        pixel_format=draw(st.none() | st.sampled_from(["yuv420p", "yuv422p10le"])),
        bit_depth=draw(st.sampled_from([8, 10, 16])),
        audio=draw(st.sampled_from(AUDIO_MODES)),
        captions=draw(st.sampled_from(CAPTION_MODES)),
        sidecar_format=draw(st.sampled_from(SIDECAR_FORMATS)),
        soft_format=draw(st.sampled_from(SOFT_SUBTITLE_FORMATS)),
        output_folder=draw(text),
        file_pattern=draw(text.filter(lambda s: s.strip())),
    )


@st.composite
def projects(draw: st.DrawFn, base: Path) -> Project:
    media = []
    for i in range(draw(st.integers(0, 3))):
        parts = draw(st.lists(name_part, min_size=1, max_size=3))
        # Inside the project folder, beside it, or in an unrelated tree.
        elsewhere = Path(os.path.abspath(os.sep)) / "elsewhere"
        root = draw(st.sampled_from([base, base.parent, elsewhere]))
        media.append(
            MediaRef(
                path=root.joinpath(*parts),
                id=f"m{i}",
                probe=ProbeSummary(
                    width=draw(st.none() | st.integers(1, 8000)),
                    height=draw(st.none() | st.integers(1, 8000)),
                    frame_rate=draw(st.none() | st.sampled_from(["25/1", "30000/1001"])),
                    frame_count=draw(st.none() | st.integers(0, 10**6)),
                    duration=draw(st.none() | st.floats(0, 1e5)),
                    is_image=draw(st.booleans()),
                    has_audio=draw(st.booleans()),
                    video_codec=draw(st.none() | text),
                ),
                fingerprint=draw(
                    st.none()
                    | st.builds(Fingerprint, st.integers(0, 2**40), st.text("0123456789abcdef",
                                                                          min_size=64, max_size=64))
                ),
            )
        )
    clips = []
    if media:
        for i in range(draw(st.integers(0, 4))):
            in_frame = draw(st.integers(0, 1000))
            overrides = draw(st.fixed_dictionaries({}, optional={
                "seed": st.integers(0, 1000),
                "engine": st.sampled_from(["classic", "none"]),
                "strength": finite,
                "extra": st.dictionaries(text, scalar, max_size=2),
            }))
            clips.append(
                Clip(
                    media_id=draw(st.sampled_from([m.id for m in media])),
                    id=f"c{i}",
                    name=draw(text),
                    in_frame=in_frame,
                    out_frame=draw(st.none() | st.integers(in_frame + 1, in_frame + 10**5)),
                    restore=overrides,
                    captions=draw(st.lists(captions(), max_size=3)),
                    prompt=draw(text),
                )
            )
    return Project(
        name=draw(text),
        media=media,
        clips=clips,
        restore=draw(restore_settings()),
        export=draw(export_settings()),
    )


_BASE = Path(tempfile.gettempdir()).absolute() / "svr-roundtrip" / "project folder"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects(_BASE))
def test_random_projects_round_trip(project: Project) -> None:
    path = _BASE / "p.svrproj"
    text = dumps_project(project, path.parent)
    loaded = loads_project(text.encode("utf-8"), path)
    assert loaded == project
    # Media that do not exist are flagged, never fatal.
    assert all(ref.missing for ref in loaded.media)
    # And the text is a fixed point: saving the loaded project gives the same bytes.
    assert dumps_project(loaded, path.parent) == text
