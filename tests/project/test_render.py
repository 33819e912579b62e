"""Project -> RestoreJobs, and full headless renders with captions in every export mode."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from seedvr_desktop.errors import UserError
from seedvr_desktop.project.model import (
    Caption,
    Clip,
    ExportSettings,
    MediaRef,
    ProbeSummary,
    Project,
    ProjectError,
    RestoreSettings,
)
from seedvr_desktop.render.project import build_render_items, engine_settings, render_project
from tests.clips import frame_id, make_video

RENDER_MODULES = (
    "seedvr_desktop.engine.pipeline",
    "seedvr_desktop.engine.video_run",
    "seedvr_desktop.engine.sizing",
    "seedvr_desktop.engine.chunking",
    "seedvr_desktop.media.reader",
    "seedvr_desktop.media.writer",
)


def _project(tmp_path: Path, clip_path: Path, frames: int, **clip_args: object) -> Project:
    ref = MediaRef(path=clip_path, probe=ProbeSummary(96, 64, "25/1", frames, frames / 25))
    project = Project(
        name="Family: tapes?",
        media=[ref],
        clips=[Clip(media_id=ref.id, name="Birthday", **clip_args)],  # type: ignore[arg-type]
        restore=RestoreSettings(engine="none"),
        export=ExportSettings(container="mp4", captions="none", output_folder="out"),
    )
    project.path = tmp_path / "p.svrproj"
    return project


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("src") / "tape.mp4", frames=30, audio="aac").path


# ----------------------------------------------------------------------------- job building


def test_output_names_follow_the_pattern(tmp_path: Path, source: Path) -> None:
    project = _project(tmp_path, source, 30)
    project.clips.append(Clip(media_id=project.media[0].id))  # unnamed: media stem is used
    items = build_render_items(project)
    assert [i.job.output_path for i in items] == [
        tmp_path / "out" / "Family_ tapes_-01-Birthday.mp4",
        tmp_path / "out" / "Family_ tapes_-02-tape.mp4",
    ]
    assert (tmp_path / "out").is_dir()
    project.export = ExportSettings(container="mkv", file_pattern="{project}",
                                    output_folder=str(tmp_path / "abs"))
    with pytest.raises(ProjectError, match="clips 1 and 2 would both be written to"):
        build_render_items(project)
    project.export = ExportSettings(container="mkv", file_pattern="{media}-{clip}",
                                    output_folder=str(tmp_path / "abs"))
    assert build_render_items(project)[1].job.output_path == tmp_path / "abs" / "tape-2.mkv"
    project.export = ExportSettings(file_pattern="{clip}-{date}")
    with pytest.raises(ProjectError, match=r"unknown field \{date\}"):
        build_render_items(project)
    project.export = ExportSettings()
    assert build_render_items(project, clips=[2])[0].number == 2
    with pytest.raises(ProjectError, match="there is no clip 3"):
        build_render_items(project, clips=[3])


def test_settings_overrides_reach_the_job(tmp_path: Path, source: Path) -> None:
    project = _project(tmp_path, source, 30, restore={"seed": 5, "short_side": 128},
                       prompt="sharp")
    project.restore = RestoreSettings(engine="classic", scale=2.0, color_fix="adain",
                                      strength=0.5, extra={"deblock": True})
    project.export = ExportSettings(codec="h265", crf=22, preset="slow", bit_depth=10,
                                    audio="transcode")
    job = build_render_items(project)[0].job
    assert job.engine == "classic" and job.seed == 5
    assert (job.size.scale, job.size.short_side, job.size.size) == (None, 128, None)
    assert job.engine_options == {"color_fix": "adain", "precision": "auto", "strength": 0.5,
                                  "prompt": "sharp", "deblock": True}
    assert (job.encode.codec, job.encode.crf, job.encode.preset) == ("h265", 22, "slow")
    assert (job.encode.bit_depth, job.encode.audio) == (10, "transcode")
    assert engine_settings(project, project.clips[0])[1] == job.size


def test_missing_media_stops_before_any_work(tmp_path: Path) -> None:
    project = _project(tmp_path, tmp_path / "gone.mp4", 30)
    project.media[0].missing = True
    expected = r"clip 1 \(Birthday\): media file .*gone\.mp4 is missing"
    with pytest.raises(ProjectError, match=expected):
        build_render_items(project)
    with pytest.raises(ProjectError, match="no clips"):
        build_render_items(Project())


def test_codec_that_the_container_cannot_hold_fails_up_front(tmp_path: Path, source: Path) -> None:
    project = _project(tmp_path, source, 30)
    project.export = ExportSettings(container="mp4", codec="ffv1")
    with pytest.raises(UserError, match=r"ffv1 cannot be stored in \.mp4 files"):
        build_render_items(project)


@pytest.mark.parametrize("vfr", [False, True])
def test_trim_times_select_exactly_the_clip_frames(tmp_path: Path, vfr: bool) -> None:
    """The pipeline's own range rule turns the job's times back into [in, out)."""
    from seedvr_desktop.engine.plan import trim_range
    from seedvr_desktop.media.probe import scan

    clip = make_video(tmp_path / "v.mkv", frames=40, vfr_jitter=vfr, seed=3)
    result = scan(clip.path)
    times = [p * result.info.video.time_base for p in result.pts]
    for first, stop in ((0, 40), (1, 2), (7, 33), (0, 39), (38, 40), (39, 40)):
        project = _project(tmp_path, clip.path, 40, in_frame=first,
                           out_frame=None if stop == 40 else stop)
        job = build_render_items(project)[0].job
        assert (job.start_time is None) == (first == 0)
        assert (job.end_time is None) == (stop == 40)
        assert trim_range(times, job.start_time, job.end_time) == (first, stop)


# ----------------------------------------------------------------------------- full renders


CAPTIONS = [Caption(0.0, 0.4, "Grandma 1994"), Caption(0.4, 0.6, "second", position="top")]


def _render(tmp_path: Path, source: Path, mode: str, container: str = "mp4",
            captions: list[Caption] = CAPTIONS, folder: str = "", **export: object) -> Path:
    project = _project(tmp_path, source, 30, in_frame=5, out_frame=25, captions=list(captions))
    project.export = ExportSettings(container=container, captions=mode,
                                    output_folder=folder or f"out-{mode}-{container}", **export)
    written = render_project(project)
    assert len(written) == 1 and written[0].is_file()
    return written[0]


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _subtitles(path: Path) -> list[tuple[float, float, str]]:
    with av.open(str(path)) as container:
        if not container.streams.subtitles:
            return []
        stream = container.streams.subtitles[0]
        cues = []
        for packet in container.demux(stream):
            if not packet.size:
                continue
            texts = [s.ass.decode().split(",", 8)[-1] for s in stream.codec_context.decode2(packet)
                     or []]
            if any(texts):
                start = float(packet.pts * packet.time_base)
                cues.append((round(start, 3), round(start + float(packet.duration *
                                                                  packet.time_base), 3), texts[0]))
        return cues


def test_render_without_captions_is_the_trimmed_clip(tmp_path: Path, source: Path) -> None:
    out = _render(tmp_path, source, "none")
    frames = _frames(out)
    assert [frame_id(f) for f in frames] == list(range(5, 25))
    assert _subtitles(out) == []
    assert not list(out.parent.glob("*.srt"))


@pytest.mark.parametrize(("container", "codec"), [("mp4", "mov_text"), ("mkv", "ass")])
def test_soft_captions_become_a_subtitle_track(tmp_path: Path, source: Path, container: str,
                                               codec: str) -> None:
    out = _render(tmp_path, source, "soft", container)
    with av.open(str(out)) as handle:
        assert handle.streams.subtitles[0].codec_context.name in (codec, "ssa")
        assert handle.streams.audio  # the source's sound is still there
    cues = _subtitles(out)
    assert [(s, e) for s, e, _ in cues] == [(0.0, 0.4), (0.4, 0.6)]
    assert cues[0][2] == "Grandma 1994" and cues[1][2].endswith("second")
    assert [frame_id(f) for f in _frames(out)] == list(range(5, 25))


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_sidecar_captions_parse(tmp_path: Path, source: Path, fmt: str) -> None:
    out = _render(tmp_path, source, "sidecar", sidecar_format=fmt)
    sidecar = out.with_suffix("." + fmt)
    assert _subtitles(out) == []  # no track inside the video
    # SRT marks the top position with an {\an8} tag; WebVTT puts it in the cue settings.
    second = "{\\an8}second" if fmt == "srt" else "second"
    assert _subtitles(sidecar) == [(0.0, 0.4, "Grandma 1994"), (0.4, 0.6, second)]


def test_burned_captions_are_in_the_pixels(tmp_path: Path, source: Path) -> None:
    # The reference goes through the same burn-in path with a caption that draws nothing, and
    # both are coded losslessly (CRF 0): any difference is the caption's ink.
    plain = _frames(_render(tmp_path, source, "burned", captions=[Caption(0, 1, " ")],
                            folder="reference", crf=0))
    burned = _frames(_render(tmp_path, source, "burned", crf=0))
    assert len(plain) == len(burned) == 20
    # The top caption covers the frame-number strip; elsewhere the numbers prove the trim.
    assert [frame_id(f) for i, f in enumerate(burned) if not 10 <= i < 15] == [
        i for i in range(5, 25) if not 15 <= i < 20]
    h = plain[0].shape[0]
    for index, (a, b) in enumerate(zip(plain, burned)):
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)  # (H, W)
        bottom, top = diff[int(h * 0.6):], diff[: int(h * 0.4)]
        t = index / 25
        if t < 0.4:  # "Grandma 1994" at the bottom
            assert (bottom > 60).sum() > 30, index
        else:
            assert bottom.max() == 0, index
        if 0.4 <= t < 0.6:  # "second" at the top
            assert (top > 60).sum() > 20, index
        elif t >= 0.6:
            assert diff.max() == 0, index  # nothing drawn after the last caption


def test_captions_start_on_the_clip_first_frame_when_the_source_starts_late(
    tmp_path: Path,
) -> None:
    """A capture whose first picture is at 0.5 s: caption time 0 is still the first frame."""
    late = make_video(tmp_path / "late.mkv", frames=20, pts_list=[500 + 40 * i for i in range(20)])
    project = _project(tmp_path, late.path, 20, captions=[Caption(0.0, 0.2, "Grandma 1994")])
    project.export = ExportSettings(container="mkv", captions="soft", output_folder="o")
    job = build_render_items(project)[0].job
    assert job.start_time is not None and job.start_time < 0.04  # anchored at frame 0
    out = render_project(project)[0]
    with av.open(str(out)) as container:
        first = next(container.decode(video=0))
        assert float(first.time) == pytest.approx(0.0, abs=1e-3)
    assert [(s, e) for s, e, _ in _subtitles(out)] == [(0.0, 0.2)]
    assert [frame_id(f) for f in _frames(out)] == list(range(20))


def test_classic_project_renders_with_every_restore_setting(tmp_path: Path, source: Path) -> None:
    """A project's settings (generative ones included) reach a classic export without error,
    and its chunk length / overlap shape the chunks the pipeline plans."""
    from seedvr_desktop.engine.plan import plan_job

    project = _project(tmp_path, source, 30, in_frame=2, out_frame=12)
    project.restore = RestoreSettings(engine="classic", color_fix="adain", precision="bf16",
                                      strength=0.5, chunk_length=4, overlap=1, model="any",
                                      scale=1.0)
    (item,) = build_render_items(project)
    plan = plan_job(item.job)
    assert (plan.caps.chunk_length, plan.caps.overlap) == (4, 1)
    assert plan.chunk_count == 3  # 10 frames: [0, 4), [3, 7), [6, 10)
    (out,) = render_project(project)
    frames = _frames(out)
    assert len(frames) == 10 and frames[0].shape[:2] == (64, 96)
    # The classic engine keeps the picture: each frame still shows its own number.
    assert [frame_id(f) for f in frames] == list(range(2, 12))
