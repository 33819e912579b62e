"""Resume: a job stopped after some chunks and continued with resume=True gives the same file
content as one uninterrupted run (same decoded frames, same video packets)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from seedvr_desktop.engine import plan as job_planning
from seedvr_desktop.engine import video_run
from seedvr_desktop.engine.job import RestoreJob, SizeRule
from seedvr_desktop.engine.journal import Journal, work_dir_for
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.registry import engine_names
from seedvr_desktop.errors import UserError
from tests.clips import make_video
from tests.engine import pipeline_fakes
from tests.engine.pipeline_fakes import decode_video, packet_payloads


@pytest.fixture(autouse=True)
def _short_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of a few frames, so a tiny clip has several to resume between."""
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS", 0.2)
    pipeline_fakes.CALLS.clear()
    pipeline_fakes.HOOK.clear()


def _job(src: Path, out: Path, engine: str, **kwargs: object) -> RestoreJob:
    return RestoreJob(src, out, engine=engine, **kwargs)  # type: ignore[arg-type]


def _assert_same_output(a: Path, b: Path) -> None:
    times_a, images_a = decode_video(a)
    times_b, images_b = decode_video(b)
    assert times_a == times_b
    assert len(images_a) == len(images_b)
    assert all((x == y).all() for x, y in zip(images_a, images_b))
    assert packet_payloads(a, "video") == packet_payloads(b, "video")
    assert packet_payloads(a) == packet_payloads(b)


def test_resume_after_cancel_equals_uninterrupted(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=45, audio="aac", vfr_jitter=True)
    full = tmp_path / "full.mp4"
    list(run_restore(_job(clip.path, full, "test-chunky")))
    chunks = len(pipeline_fakes.CALLS)
    assert chunks >= 5

    out = tmp_path / "resumed.mp4"
    cancel = threading.Event()
    pipeline_fakes.CALLS.clear()
    pipeline_fakes.HOOK.append(lambda ctx: cancel.set() if ctx.index == 3 else None)
    events = list(run_restore(_job(clip.path, out, "test-chunky"), cancel))
    assert events[-1].stage == "cancelled" and not out.exists()
    journal = work_dir_for(out) / "journal.json"
    assert journal.exists()  # finished segments are kept for --resume
    assert not list(work_dir_for(out).glob("*.part"))  # the unfinished one is gone

    pipeline_fakes.HOOK.clear()
    pipeline_fakes.CALLS.clear()
    events = list(run_restore(_job(clip.path, out, "test-chunky", resume=True)))
    assert any("resuming" in e.message for e in events)
    assert events[-1].stage == "done"
    resumed_chunks = [index for index, _, _ in pipeline_fakes.CALLS]
    assert resumed_chunks and resumed_chunks[0] > 0  # finished chunks were not redone
    assert resumed_chunks == list(range(resumed_chunks[0], chunks))
    _assert_same_output(full, out)
    assert not work_dir_for(out).exists()


def test_resume_after_crash_equals_uninterrupted(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mkv", frames=40, audio="ac3")
    full = tmp_path / "full.mkv"
    list(run_restore(_job(clip.path, full, "test-chunky", size=SizeRule(scale=1.5))))

    def crash(ctx: object) -> None:
        if getattr(ctx, "index", 0) == 4:
            raise RuntimeError("simulated crash")

    out = tmp_path / "out.mkv"
    pipeline_fakes.HOOK.append(crash)
    with pytest.raises(RuntimeError):
        list(run_restore(_job(clip.path, out, "test-chunky", size=SizeRule(scale=1.5))))
    (work_dir_for(out) / "seg_99999.mov.part").write_bytes(b"left by the crash")
    pipeline_fakes.HOOK.clear()
    list(run_restore(_job(clip.path, out, "test-chunky", size=SizeRule(scale=1.5),
                          resume=True)))
    _assert_same_output(full, out)


def test_resume_pass_through_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(video_run, "_EVENT_INTERVAL", 0.0)  # an event per frame
    clip = make_video(tmp_path / "c.mp4", frames=30, audio="aac")
    full = tmp_path / "full.mp4"
    list(run_restore(_job(clip.path, full, "none")))
    out = tmp_path / "out.mp4"
    cancel = threading.Event()
    for event in run_restore(_job(clip.path, out, "none"), cancel):
        if event.stage == "restore" and event.frames_done >= 17:
            cancel.set()
    journal = Journal._load(work_dir_for(out))
    assert journal is not None and 0 < journal.segments[-1].frames_done < 30
    events = list(run_restore(_job(clip.path, out, "none", resume=True)))
    assert events[-1].stage == "done"
    _assert_same_output(full, out)


def test_changed_settings_start_over(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=30)
    out = tmp_path / "out.mp4"
    cancel = threading.Event()
    pipeline_fakes.HOOK.append(lambda ctx: cancel.set() if ctx.index == 2 else None)
    list(run_restore(_job(clip.path, out, "test-chunky"), cancel))
    pipeline_fakes.HOOK.clear()
    pipeline_fakes.CALLS.clear()
    events = list(run_restore(_job(clip.path, out, "test-chunky", seed=1, resume=True)))
    assert any("other settings" in e.message for e in events)
    assert pipeline_fakes.CALLS[0][0] == 0  # started from the first chunk
    reference = tmp_path / "ref.mp4"
    list(run_restore(_job(clip.path, reference, "test-chunky", seed=1)))
    _assert_same_output(reference, out)


@pytest.mark.skipif("classic" not in engine_names(), reason="classic engine not installed")
def test_resume_with_classic_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(video_run, "_EVENT_INTERVAL", 0.0)  # an event after every chunk
    clip = make_video(tmp_path / "c.mp4", frames=48, size=(64, 48))  # 4 chunks of <= 16
    full = tmp_path / "full.mp4"
    list(run_restore(_job(clip.path, full, "classic")))
    out = tmp_path / "out.mp4"
    cancel = threading.Event()
    for event in run_restore(_job(clip.path, out, "classic"), cancel):
        if event.stage == "restore" and event.chunk_index >= 2:
            cancel.set()
    journal = Journal._load(work_dir_for(out))
    assert journal is not None and journal.segments[-1].next_chunk == 2
    list(run_restore(_job(clip.path, out, "classic", resume=True)))
    _assert_same_output(full, out)


def test_resume_png_sequence(tmp_path: Path) -> None:
    from seedvr_desktop.media.codecs import EncodeSettings
    from seedvr_desktop.media.images import read_image

    clip = make_video(tmp_path / "c.mp4", frames=30)
    png = EncodeSettings(codec="png")
    list(run_restore(_job(clip.path, tmp_path / "full", "test-chunky", encode=png)))
    cancel = threading.Event()
    pipeline_fakes.HOOK.append(lambda ctx: cancel.set() if ctx.index == 2 else None)
    events = list(run_restore(_job(clip.path, tmp_path / "out", "test-chunky", encode=png),
                              cancel))
    assert events[-1].stage == "cancelled" and not (tmp_path / "out").exists()
    pipeline_fakes.HOOK.clear()
    list(run_restore(_job(clip.path, tmp_path / "out", "test-chunky", encode=png,
                          resume=True)))
    full = sorted((tmp_path / "full").iterdir())
    resumed = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in full] == [p.name for p in resumed] and len(full) == 30
    assert all((read_image(a) == read_image(b)).all() for a, b in zip(full, resumed))


def test_unwritable_output_folder_is_a_user_error(tmp_path: Path) -> None:
    """A file where the output folder should be: UserError naming the folder, nothing made."""
    from seedvr_desktop.errors import UserError

    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    for out in (blocker / "x.mp4", blocker / "a" / "b" / "x.mp4"):
        with pytest.raises(UserError, match=r"cannot write to .*blocker"):
            Journal.open(out, "f", resume=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_failed_work_folder_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """Parents can be made but the work folder or its journal cannot (read-only mount point,
    full disk): the error is a UserError and the folders made for the job are removed."""
    import errno

    from seedvr_desktop.engine import journal as journal_module
    from seedvr_desktop.errors import UserError

    out = tmp_path / "new" / "deeper" / "x.mp4"
    real_mkdir = Path.mkdir

    def read_only_here(self: Path, *args: object, **kwargs: object) -> None:
        if self.name.endswith(journal_module.WORK_SUFFIX):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", read_only_here)
    with pytest.raises(UserError, match="Read-only file system"):
        Journal.open(out, "f", resume=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(Path, "mkdir", real_mkdir)

    def disk_full(self: Journal) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Journal, "_save", disk_full)
    with pytest.raises(UserError, match="No space left"):
        Journal.open(out, "f", resume=False)
    assert list(tmp_path.iterdir()) == []


def test_png_frames_into_a_file_are_a_user_error(tmp_path: Path) -> None:
    """PNG frames asked into a path that is a file: UserError at the end, the finished frames
    stay in the journal for --resume, and the file in the way is untouched."""
    from seedvr_desktop.errors import UserError
    from seedvr_desktop.media.codecs import EncodeSettings

    clip = make_video(tmp_path / "c.mp4", frames=12)
    target = tmp_path / "frames_here"
    target.write_text("a file, not a folder")
    job = _job(clip.path, target, "test-chunky", encode=EncodeSettings(codec="png"),
               overwrite=True)
    with pytest.raises(UserError, match="cannot write to"):
        list(run_restore(job))
    assert target.read_text() == "a file, not a folder"
    journal = Journal._load(work_dir_for(target))
    assert journal is not None and journal.segments[-1].frames_done == 12
    assert len(list((work_dir_for(target) / "frames").iterdir())) == 12


def test_changed_captions_change_the_resume_identity(tmp_path: Path) -> None:
    """Resuming after a caption edit must start over: the burner's fingerprint is part of it."""
    from seedvr_desktop.engine.plan import job_fingerprint, plan_job
    from seedvr_desktop.project.captions import CaptionBurner
    from seedvr_desktop.project.model import Caption

    src = make_video(tmp_path / "in.mp4", frames=6, size=(64, 48))
    job = _job(src, tmp_path / "out.mp4", "none")
    plan = plan_job(job)
    job.frame_filter = CaptionBurner([Caption(start=0.0, end=1.0, text="Grandma")], font=False)
    first = job_fingerprint(job, plan)
    job.frame_filter = CaptionBurner([Caption(start=0.0, end=1.0, text="Grandpa")], font=False)
    assert job_fingerprint(job, plan) != first


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_writing_segments_is_resumable(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC in the segment encoder: one-line UserError, finished segments kept, no partial
    output, and --resume later gives the same file as an uninterrupted run."""
    from seedvr_desktop.media.encoder import SegmentEncoder

    clip = make_video(tmp_path / "c.mp4", frames=45, audio="aac")
    full = tmp_path / "full.mp4"
    list(run_restore(_job(clip.path, full, "test-chunky")))

    out_dir = tmp_path / "out"
    out = out_dir / "r.mp4"
    real = SegmentEncoder.write_image
    written = [0]

    def write_image(self: SegmentEncoder, image: object, time: object) -> None:
        written[0] += 1
        if written[0] > 20:  # the disk fills up after some segments are finished
            raise _no_space()
        real(self, image, time)  # type: ignore[arg-type]

    monkeypatch.setattr(SegmentEncoder, "write_image", write_image)
    with pytest.raises(UserError) as info:
        list(run_restore(_job(clip.path, out, "test-chunky")))
    message = str(info.value)
    assert message.startswith(f"cannot write to {out_dir}: No space left on device")
    assert "--resume" in message and "\n" not in message
    assert not out.exists()
    assert not list(work_dir_for(out).glob("*.part"))
    assert [p.name for p in out_dir.iterdir()] == [work_dir_for(out).name]
    assert Journal._load(work_dir_for(out)).segments  # finished work kept

    monkeypatch.setattr(SegmentEncoder, "write_image", real)
    events = list(run_restore(_job(clip.path, out, "test-chunky", resume=True)))
    assert events[-1].stage == "done"
    _assert_same_output(full, out)


def test_full_disk_while_muxing_keeps_segments(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from FFmpeg while writing the final file: no audio fallback retries, no temporary
    file left, and the segments resume straight into the final mux."""
    import av

    from seedvr_desktop.media import remux

    clip = make_video(tmp_path / "c.mp4", frames=30, audio="aac")
    out = tmp_path / "r.mp4"
    real = remux._video_packets
    attempts = [0]

    def failing(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        attempts[0] += 1
        for n, item in enumerate(real(*args, **kwargs)):  # type: ignore[arg-type]
            if n == 5:
                av.error.err_check(-errno.ENOSPC, str(out))  # what FFmpeg's write gives
            yield item

    monkeypatch.setattr(remux, "_video_packets", failing)
    with pytest.raises(UserError, match=r"No space left on device; 30 finished frames kept"):
        list(run_restore(_job(clip.path, out, "none")))
    assert attempts[0] == 1  # not retried with transcoded or missing audio
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["c.mp4", work_dir_for(out).name])

    monkeypatch.setattr(remux, "_video_packets", real)
    events = list(run_restore(_job(clip.path, out, "none", resume=True)))
    assert events[-1].stage == "done"
    times, images = decode_video(out)
    assert times == list(clip.times) and len(images) == 30
    assert packet_payloads(out) == packet_payloads(clip.path)


def test_overwriting_a_longer_png_sequence_leaves_only_the_new_frames(tmp_path: Path) -> None:
    """A shorter re-run with --overwrite must not leave the earlier run's extra frames behind,
    and without --overwrite any earlier frame of the sequence is refused."""
    from seedvr_desktop.errors import UserError
    from seedvr_desktop.media.codecs import EncodeSettings

    clip = make_video(tmp_path / "c.mp4", frames=12)
    png = EncodeSettings(codec="png")
    out = tmp_path / "seq"
    list(run_restore(_job(clip.path, out, "none", encode=png)))
    assert len(list(out.iterdir())) == 12
    (out / "notes.txt").write_text("mine")  # not a frame of the sequence: never touched
    with pytest.raises(UserError, match="already exists"):
        list(run_restore(_job(clip.path, out, "none", encode=png, end_time=0.2)))
    list(run_restore(_job(clip.path, out, "none", encode=png, end_time=0.2, overwrite=True)))
    frames = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert 1 < len(frames) < 12
    assert frames == [f"frame_{i:06d}.png" for i in range(1, len(frames) + 1)]
    assert (out / "notes.txt").read_text() == "mine"
