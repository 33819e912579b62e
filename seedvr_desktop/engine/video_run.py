"""One video restore, chunk by chunk, journaled into segments (driven by `run_restore`).

Flow per chunk: read the chunk's source frames (overlap frames come from a small buffer, not
from a second decode), pad to a valid length, restore, trim the padding, blend the overlap with
the previous chunk, and encode the frames the blender has finished. A segment is closed at the
first chunk boundary after SEGMENT_SECONDS of output, then journaled with the blender's tail, so
`--resume` continues from the next chunk exactly as an uninterrupted run would have.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from fractions import Fraction
from typing import Any

import numpy as np

from seedvr_desktop.engine import plan as job_planning
from seedvr_desktop.engine.base import (
    Engine,
    ProgressEvent,
    SourceInfo,
    record_run_state,
    resume_run_state,
)
from seedvr_desktop.engine.chunk_stream import cuts_apply, restore_chunks, to_uint8
from seedvr_desktop.engine.chunk_wait import END, RunningChunk, await_chunk, next_or_end
from seedvr_desktop.engine.chunking import OverlapBlender, plan_chunks
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.journal import Journal, SegmentRecord
from seedvr_desktop.engine.plan import JobPlan, engine_geometry, job_fingerprint
from seedvr_desktop.engine.progress import ProgressMeter
from seedvr_desktop.engine.sinks import OutputWriteError, writing
from seedvr_desktop.errors import Cancelled
from seedvr_desktop.media.probe import VideoInfo
from seedvr_desktop.media.reader import FileIdentity, SourceChanged

log = logging.getLogger(__name__)

_EVENT_INTERVAL = 0.25  # seconds between progress events when chunks are tiny
_PREVIEW_INTERVAL = 1.0  # seconds between preview pictures
# Sound a file may keep past its last picture (seconds) when the job runs to the end of it.
SOUND_TAIL_KEPT = Fraction(1, 2)
class VideoRun:
    """State of one running video job; `events()` is the generator `run_restore` yields."""

    def __init__(self, job: RestoreJob, plan: JobPlan, cancel: threading.Event,
                 engine: Engine | None = None) -> None:
        from seedvr_desktop.media.probe import probe

        self.job = job
        self.given_engine = engine  # the caller's engine: used, never closed here
        self.plan = plan
        self.cancel = cancel
        # The file the plan was made for: a reader of another one (moved over the path since)
        # is refused, and the readers check it again between chunks (see SourceChanged).
        self.identity = FileIdentity.of(plan.input_path)
        self.info = probe(plan.input_path)
        video = self.info.video
        assert video is not None  # plan_job refuses inputs without a picture
        self.video: VideoInfo = video
        self.sink: Any = None
        self.journal: Journal | None = None
        self.damaged = 0
        self._read_upto = 0  # relative index of the first source frame not yet read
        self._last_event = 0.0
        self._last_preview = 0.0

    # ------------------------------------------------------------------ setup

    def _passthrough(self) -> bool:
        """Whether decoded pictures can go straight to the encoder (see passthrough.py)."""
        v, p = self.video, self.plan
        return (p.engine == "none" and not p.sequence and self.job.frame_filter is None
                and p.output_size == (v.width, v.height) and v.rotation == 0
                and v.sample_aspect_ratio == 1 and v.bit_depth <= 8
                and self.job.encode.bit_depth <= 8)

    def _origin(self, times: list[Fraction]) -> Fraction:
        """Source time that becomes output time 0: 0 keeps the source timing untouched; a
        trimmed job starts at its first frame."""
        return times[self.plan.first_frame] if self.job.start_time is not None else Fraction(0)

    def _make_sink(self, journal: Journal, fast: bool) -> Any:
        from seedvr_desktop.engine.passthrough import passthrough_pix_fmt
        from seedvr_desktop.engine.sinks import PngSink, SegmentSink
        from seedvr_desktop.media.codecs import codec_spec
        from seedvr_desktop.media.encoder import VideoParams, time_base_for

        job, v = self.job, self.video
        if self.plan.sequence:
            depth = job.encode.bit_depth if job.encode.codec.lower() == "png" else 8
            return PngSink(journal, self.plan.output_path, depth, job.overwrite)
        width, height = self.plan.output_size
        params = VideoParams.from_settings(
            job.encode, width=width, height=height, frame_rate=self.plan.frame_rate,
            time_base=time_base_for(self.plan.frame_rate, v.time_base), color=v.color,
            source_height=v.height)
        if fast:
            pix = passthrough_pix_fmt(v.pix_fmt, codec_spec(job.encode.codec).encoder,
                                      job.encode.bit_depth)
            if pix:
                from dataclasses import replace

                params = replace(params, pix_fmt=pix)
        return SegmentSink(journal, params)

    def _check_existing(self) -> None:
        from seedvr_desktop.media.outputs import refuse_existing

        if not self.plan.sequence:
            refuse_existing(self.plan.output_path, self.job.overwrite)

    # ------------------------------------------------------------------ main generator

    def events(self) -> Iterator[ProgressEvent]:
        from seedvr_desktop.media.reader import VideoReader

        plan, job = self.plan, self.job
        self._check_existing()
        fast = self._passthrough()
        yield ProgressEvent("probe", 0, plan.frame_count, message=f"starting {plan.engine}")
        journal, note = Journal.open(plan.output_path, job_fingerprint(job, plan),
                                     resume=job.resume)
        self.journal = journal
        if note:
            yield ProgressEvent("probe", 0, plan.frame_count, message=note)
        reader: Any = None
        engine: Any = None
        owned = False  # whether this run created the engine (and so closes it)
        geometry = ExitStack()  # the engine's caps as the plan's, for this run only
        try:
            # Loading a model can take long and fail (missing files): inside the try, so a
            # failure keeps a resumable journal and drops an empty one.
            if not fast:
                engine, owned = self._open_engine()
                if engine is not None:
                    geometry.enter_context(engine_geometry(engine, plan.caps))
            if fast:
                from seedvr_desktop.engine.passthrough import PassthroughReader

                reader = PassthroughReader(plan.input_path)
            else:
                reader = VideoReader(plan.input_path, apply_rotation=True, apply_sar=True,
                                     high_bit_depth=self.video.bit_depth > 8)
            self._check_reader(reader)
            times = reader.frame_times()
            origin = self._origin(times)
            self.sink = self._make_sink(journal, fast)
            if self.plan.sequence and not job.overwrite:
                existing = self.sink.first_existing(plan.frame_count)
                if existing is not None:
                    from seedvr_desktop.errors import UserError

                    raise UserError(f"{existing} already exists; use --overwrite to replace it")
            if engine is not None:
                engine.prepare(self.source_info(reader), plan.output_size)
                resume_run_state(engine, journal)  # issue 11: a resume reuses the memory plan
            cuts = yield from self._cuts(reader, fast)
            chunks = self._chunks(cuts, fast)
            del times
            yield from self._restore(reader, engine, chunks, origin)
            reader.check_source()  # the sound and subtitles come from the same file
            yield ProgressEvent("finalize", plan.frame_count, plan.frame_count,
                                message="writing the output file")
            notices = self.sink.finalize(lambda segs: self._mux_request(segs, origin, reader))
        except (Cancelled, GeneratorExit) as exc:
            self._stop(keep=True)
            if isinstance(exc, GeneratorExit):
                raise
            done = journal.last.frames_done if journal.last else 0
            kept = (f"; {done} finished frames kept for --resume in {journal.folder.name}"
                    if journal.last else "")
            yield ProgressEvent("cancelled", done, plan.frame_count,
                                message=f"cancelled{kept}")
            return
        except SourceChanged as exc:
            # Finished segments hold pictures of the original file: kept for --resume with
            # it (the job's fingerprint names its size and time); nothing at the output path.
            self._stop(keep=True)
            finished = journal.last.frames_done if journal.last else 0
            where = (f"{finished} finished frames kept: put the original back and run again "
                     "with --resume" if finished else "nothing was written")
            raise SourceChanged(f"{exc}; stopped ({where})") from None
        except OutputWriteError as exc:
            # Disk full (or gone read-only) mid-job: the finished segments stay for --resume,
            # the unfinished one and any temporary output file are already gone.
            self._stop(keep=True)
            message = str(exc)
            if journal.last:
                message += (f"; {journal.last.frames_done} finished frames kept: make room and "
                            "run again with --resume")
            raise OutputWriteError(message) from exc.__cause__
        except BaseException:
            self._stop(keep=True)
            raise
        finally:
            if reader is not None:
                reader.close()
            geometry.close()
            if owned:
                engine.close()
        journal.remove()
        if job.post_process is not None:
            job.post_process(plan.output_path)
        yield ProgressEvent("done", plan.frame_count, plan.frame_count,
                            message=self._summary(notices))

    def _stop(self, keep: bool) -> None:
        """Drop the unfinished segment; keep the journal only if it holds finished work.

        Either way the work folder's OS lock is let go of now: the caller may hold on to this
        run (its generator, or the exception it raised) for a long time, and another run of
        the same output, in this process or another, must not have to wait for that."""
        if self.sink is not None:
            self.sink.abort()
        if self.journal is not None:
            if keep and self.journal.last:
                self.journal.close()
            else:
                self.journal.remove()

    def _check_reader(self, reader: Any) -> None:
        """The reader must read the file this run was planned for (probed in __init__)."""
        if self.identity is not None and reader.identity is not None:
            change = self.identity.change(reader.identity)
            if change:
                raise SourceChanged(f"{self.plan.input_path.name} {change} while it was "
                                    "being read")

    def _summary(self, notices: list[str]) -> str:
        parts = [f"wrote {self.plan.output_path} ({self.plan.frame_count} frames, "
                 f"engine {self.plan.engine})"]
        if self.damaged:
            parts.append(f"{self.damaged} damaged frame(s) replaced by the previous picture")
        parts.extend(notices)
        return "; ".join(parts)

    def _mux_request(self, segments: list[Any], origin: Fraction, reader: Any) -> Any:
        from seedvr_desktop.media.mux_request import MuxRequest

        job, plan = self.job, self.plan
        times = reader.frame_times()
        start = origin if job.start_time is not None else None
        # Sound and subtitles stop where the pictures do, also at the end of the file: a
        # capture still being written (the probe saw N pictures, the audio runs on) or a
        # track longer than the video must not give a 20 s video 45 s of sound. At the end
        # of the file a short tail is kept (codec padding, the last audio frame: nearly every
        # file's sound ends a little after its last picture), so its packets stay as they are.
        step = 1 / plan.frame_rate if plan.frame_rate > 0 else Fraction(1, 25)
        if plan.stop_frame < len(times):
            end = times[plan.stop_frame]
        else:
            end = times[plan.stop_frame - 1] + step + SOUND_TAIL_KEPT
        return MuxRequest(segments=segments, target=plan.output_path, params=self.sink.params,
                          source=plan.input_path, origin=origin, start=start, end=end,
                          audio=job.encode.audio, subtitles=job.encode.subtitles,
                          overwrite=job.overwrite)

    # ------------------------------------------------------------------ planning

    def _open_engine(self) -> tuple[Engine | None, bool]:
        """(engine, whether this run owns it); a subclass that restores elsewhere (the cluster
        driver) gives None and overrides `_restore`."""
        from seedvr_desktop.engine import registry

        if self.given_engine is not None:
            return self.given_engine, False
        return registry.create_engine(self.plan.engine, **self.job.engine_options), True

    def source_info(self, reader: Any) -> SourceInfo:
        """What `Engine.prepare` is told about the source read by `reader`."""
        v = self.video
        return SourceInfo(reader.width, reader.height, self.plan.frame_rate, v.interlaced,
                          v.field_order, v.bit_depth, False)

    def _cuts(self, reader: Any, fast: bool) -> Generator[ProgressEvent, None, list[int]]:
        """Scene cuts (relative frame indices) from the journal or a detection pass.

        Skipped when chunks are single frames without overlap: no chunk can cross a cut then.
        """
        caps = self.plan.caps
        journal = self.journal
        assert journal is not None
        if fast or not cuts_apply(caps):
            return []
        if "cuts" in journal.extra:
            return [int(c) for c in journal.extra["cuts"]]
        from seedvr_desktop.engine.scenecut import CutDetector

        detector = CutDetector()
        cuts: list[int] = []
        first, total = self.plan.first_frame, self.plan.frame_count
        meter = ProgressMeter(total)
        for vf in reader.frames(first, self.plan.stop_frame):
            if self.cancel.is_set():
                raise Cancelled()
            rel = vf.index - first
            if detector.feed(rel, vf.image) and rel > 0:
                cuts.append(rel)
            meter.advance(1)
            if self._due():
                reader.check_source()
                yield meter.event("probe", message="finding scene cuts")
        journal.set_extra(cuts=cuts)
        return cuts

    def _chunks(self, cuts: list[int], fast: bool) -> list[Any]:
        caps = self.plan.caps
        if fast:
            return []  # the pass-through path streams frames without chunk plans
        return plan_chunks(self.plan.frame_count, caps.chunk_length, caps.overlap,
                           temporal_multiple=caps.temporal_multiple, cuts=cuts)

    def _segment_target(self) -> int:
        caps = self.plan.caps
        # Read through the module so tests can shorten segments.
        seconds = (job_planning.SEGMENT_SECONDS_GENERATIVE if caps.generative
                   else job_planning.SEGMENT_SECONDS)
        return max(caps.chunk_length, round(float(self.plan.frame_rate) * seconds), 1)

    def _due(self) -> bool:
        now = _time.monotonic()
        if now - self._last_event >= _EVENT_INTERVAL:
            self._last_event = now
            return True
        return False

    # ------------------------------------------------------------------ restoring

    def _restore(self, reader: Any, engine: Any, chunks: list[Any], origin: Fraction
                 ) -> Iterator[ProgressEvent]:
        if engine is None:
            yield from self._restore_passthrough(reader, origin)
        else:
            yield from self._restore_chunks(reader, engine, chunks, origin)

    def _begin(self) -> tuple[int, int]:
        """(next chunk, frames done) from the journal; opens the first segment to write."""
        assert self.journal is not None
        last = self.journal.last
        self.sink.open(len(self.journal.segments))
        if last is None:
            return 0, 0
        self.damaged = last.damaged
        return last.next_chunk, last.frames_done

    def _commit(self, next_chunk: int, frames_done: int, frames: int, tail: Any,
                more: bool) -> None:
        assert self.journal is not None
        name = self.sink.close()
        with writing(self.journal.folder.parent):
            self.journal.commit(SegmentRecord(name, frames, next_chunk, frames_done,
                                              self.damaged), tail)
        if more:
            self.sink.open(len(self.journal.segments))

    def _restore_passthrough(self, reader: Any, origin: Fraction) -> Iterator[ProgressEvent]:
        """Engine "none" at the source size: decoded pictures go straight to the encoder."""
        plan = self.plan
        _, done = self._begin()
        first, total = plan.first_frame, plan.frame_count
        target = self._segment_target()
        meter = ProgressMeter(total, done)
        in_segment = 0
        for vf in reader.frames(first + done, plan.stop_frame):
            if self.cancel.is_set():
                raise Cancelled()
            self.damaged += vf.damaged
            self.sink.write_frame(vf.image.frame, vf.time - origin)
            in_segment += 1
            done += 1
            meter.advance(1)
            if in_segment >= target or done == total:
                self._commit(done, done, in_segment, None, more=done < total)
                in_segment = 0
            if self._due() or done == total:
                reader.check_source()
                yield meter.event("restore", chunk=done, chunks=total,
                                  preview=self._preview(vf.image))

    def _restore_chunks(self, reader: Any, engine: Any, chunks: list[Any], origin: Fraction
                        ) -> Iterator[ProgressEvent]:
        plan, job = self.plan, self.job
        assert self.journal is not None
        next_chunk, done = self._begin()
        tail = self.journal.tail_state()
        blender = (OverlapBlender.from_state(tail) if tail is not None
                   else OverlapBlender(plan.caps.overlap, done))
        first, total = plan.first_frame, plan.frame_count
        self._read_upto = chunks[next_chunk - 1].stop if next_chunk > 0 else 0
        pending: dict[int, Fraction] = {}  # output time of frames the blender still holds

        def on_read(vf: Any) -> None:
            rel = vf.index - first
            if rel >= self._read_upto:  # a resumed run reads its overlap again: count once
                self.damaged += vf.damaged
                self._read_upto = rel + 1
            pending[rel] = vf.time - origin

        # Resume reads again from the first frame not yet written: the blender's held tail
        # needs those frames' times (and the next chunk's overlap needs their pictures).
        frames = reader.frames(first + done, plan.stop_frame)
        target = self._segment_target()
        meter = ProgressMeter(total, done)
        in_segment = 0
        scale = 1.0 / (65535.0 if reader.dtype == np.uint16 else 255.0)
        # The engine sees `halt`, not the caller's event: set on cancel, and also when this
        # generator is closed or fails while a chunk runs, so the helper thread stops soon.
        halt = threading.Event()
        running = RunningChunk(chunks, next_chunk)
        stream = restore_chunks(engine, frames, chunks[next_chunk:], blender, first=first,
                                seed=job.seed, scale=scale, cancel=halt, on_read=on_read,
                                on_progress=running.report)
        # Each chunk (decode + restore) runs on one helper thread, always the same one, while
        # this generator waits for it and yields heartbeats: one chunk of a big picture can
        # take minutes, and the CLI and GUI must see time pass. Only one chunk runs at a
        # time; the blender, the sink and the journal are touched between chunks, never during.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seedvr-chunk")
        try:
            while True:
                if self.cancel.is_set():
                    halt.set()
                running.start()
                item = yield from await_chunk(pool.submit(next_or_end, stream), self.cancel,
                                              halt, meter, running)
                if item is END:
                    break
                cp, finished = item
                running.index = cp.index + 1
                last_frame = None
                last = cp.index == len(chunks) - 1
                for rel, image in finished:
                    out_time = pending.pop(rel)
                    if job.frame_filter is not None:
                        image = job.frame_filter(rel, out_time, image)
                    self.sink.write(image, out_time)
                    last_frame = image
                    in_segment += 1
                    done += 1
                meter.advance(done - meter.done)
                if in_segment >= target or last:
                    state = None if last else blender.state()
                    record_run_state(engine, self.journal)  # issue 11: plan after OOM retry
                    self._commit(cp.index + 1, done, in_segment, state, more=not last)
                    in_segment = 0
                # Between chunks: the open decoder still reads the file the run began on, but
                # a reopen would not; stop here rather than mix in another file's frames.
                reader.check_source()
                if self._due() or last:
                    yield meter.event("restore", chunk=cp.index + 1, chunks=len(chunks),
                                      preview=self._preview(last_frame))
        finally:
            halt.set()  # a chunk still running (this generator closed or failed) stops early
            pool.shutdown(wait=True)
            stream.close()  # type: ignore[attr-defined]  # a generator

    def _preview(self, image: Any) -> np.ndarray | None:
        now = _time.monotonic()
        if image is None or now - self._last_preview < _PREVIEW_INTERVAL:
            return None
        self._last_preview = now
        if hasattr(image, "to_rgb"):
            return image.to_rgb()
        if image.dtype == np.uint8:
            return image
        return to_uint8(image)

