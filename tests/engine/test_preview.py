"""The GUI preview goes through the export's chunking and blending: a previewed range is, frame
for frame, what exporting the same range writes (with overlapping chunks, where a preview that
restored chunks on its own would show seams the export does not have)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.preview import PreviewRequest, render_preview
from seedvr_desktop.media.codecs import EncodeSettings
from tests.clips import make_video
from tests.engine import pipeline_fakes

FPS = 25


def _export_range(src: Path, out: Path, first: int, stop: int, options: dict[str, object]
                  ) -> list[np.ndarray]:
    job = RestoreJob(src, out, engine="test-chunky", engine_options=dict(options),
                     start_time=(first + 0.5) / FPS, end_time=(stop - 0.5) / FPS,
                     encode=EncodeSettings(codec="png"))
    events = list(run_restore(job))
    assert events[-1].stage == "done", events[-1]
    files = sorted(out.glob("*.png"))
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


def test_preview_equals_export_of_the_same_range_with_overlap(tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mp4", frames=48, size=(64, 48), codec="ffv1",
                     fps=Fraction(FPS))
    options = {"chunk_length": 9, "overlap": 2}
    request = PreviewRequest(src, center=20, engine="test-chunky", engine_options=options)
    start, preview = render_preview(pipeline_fakes.ChunkyEngine(), request)
    pipeline_fakes.CALLS.clear()
    exported = _export_range(src, tmp_path / "frames", start, start + len(preview), options)
    assert len(exported) == len(preview) == 25
    for i, (a, b) in enumerate(zip(preview, exported)):
        assert np.array_equal(a, b), f"frame {start + i}: preview differs from the export"
    # The overlap really blended chunks of different brightness: a seam-free preview is needed.
    assert len({c[0] for c in pipeline_fakes.CALLS}) > 1
