"""Pipeline overhead: `restore --engine none` against a plain ffmpeg command line.

Both re-encode the same cached 1080p H.264 clip with AAC sound using libx264 at the same CRF and
preset, copying the audio; the ratio of wall times is the cost of our pipeline (Python, PyAV,
journaled segments, the final remux). Target: <= 1.15. Runs alternate between the two commands
so that load from other processes hits both alike; the best of N runs is compared.

    python bench/pipeline.py [--runs 3] [--seconds 10]

Prints a table and writes bench/results/pipeline.json. Without an ffmpeg binary the ffmpeg row
is skipped (and said so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CRF, PRESET = "18", "medium"


def make_clip(path: Path, seconds: int, size: tuple[int, int] = (1920, 1080), fps: int = 30
              ) -> Path:
    """A 1080p H.264 + AAC clip (cached): FFmpeg's testsrc2 pattern, or PyAV if no ffmpeg."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.mp4")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={fps}",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
             "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", str(tmp)],
            check=True)
    else:
        _make_clip_pyav(tmp, seconds, size, fps)
    os.replace(tmp, path)
    return path


def _make_clip_pyav(path: Path, seconds: int, size: tuple[int, int], fps: int) -> None:
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.codec_context.options = {"preset": "veryfast", "crf": "20"}
        a = out.add_stream("aac", rate=48000)
        a.codec_context.layout = "stereo"
        xs = np.arange(w, dtype=np.uint16)[None, :]
        ys = np.arange(h, dtype=np.uint16)[:, None]
        for i in range(seconds * fps):
            img = np.empty((h, w, 3), np.uint8)
            img[..., 0] = (xs + 4 * i) % 256
            img[..., 1] = (ys + 2 * i) % 256
            img[..., 2] = ((xs + ys) // 4 + i) % 256
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        n = 48000 * seconds
        t = np.arange(n) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for s in range(0, n, 1024):
            chunk = np.stack([tone[s:s + 1024]] * 2)
            if chunk.shape[1] < 1024:
                break
            f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            f.sample_rate, f.pts, f.time_base = 48000, s, Fraction(1, 48000)
            out.mux(a.encode(f))
        out.mux(a.encode(None))


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)

    clip = make_clip(RESULTS / f"bench_1080p_{args.seconds}s.mp4", args.seconds)
    work = RESULTS / "work"
    work.mkdir(parents=True, exist_ok=True)
    ours_cmd = [sys.executable, "-m", "seedvr_desktop", "restore", str(clip), "-o",
                str(work / "ours.mp4"), "--engine", "none", "--crf", CRF, "--preset", PRESET,
                "--audio", "copy", "--overwrite"]
    ffmpeg = shutil.which("ffmpeg")
    ff_cmd = None if ffmpeg is None else [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libx264",
        "-crf", CRF, "-preset", PRESET, "-pix_fmt", "yuv420p", "-c:a", "copy",
        str(work / "ffmpeg.mp4")]

    rows: dict[str, list[tuple[float, float]]] = {"seedvr-desktop restore --engine none": []}
    if ff_cmd:
        rows["ffmpeg -c:v libx264 -c:a copy"] = []
    for _ in range(args.runs):  # alternate so background load hits both
        rows["seedvr-desktop restore --engine none"].append(timed(ours_cmd))
        if ff_cmd:
            rows["ffmpeg -c:v libx264 -c:a copy"].append(timed(ff_cmd))

    result: dict[str, object] = {
        "clip": clip.name, "seconds": args.seconds, "crf": CRF, "preset": PRESET,
        "runs": args.runs, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "commands": {}, "target_ratio": 1.15,
    }
    print(f"{'command':<40} {'best wall s':>11} {'median s':>9} {'best CPU s':>10}")
    for name, samples in rows.items():
        walls = [w for w, _ in samples]
        cpus = [c for _, c in samples]
        result["commands"][name] = {"wall": walls, "cpu": cpus}  # type: ignore[index]
        print(f"{name:<40} {min(walls):>11.2f} {statistics.median(walls):>9.2f} "
              f"{min(cpus):>10.2f}")
    if ff_cmd:
        ours = rows["seedvr-desktop restore --engine none"]
        ff = rows["ffmpeg -c:v libx264 -c:a copy"]
        ratio = min(w for w, _ in ours) / min(w for w, _ in ff)
        ratio_median = statistics.median(w for w, _ in ours) / statistics.median(w for w, _ in ff)
        cpu_ratio = min(c for _, c in ours) / min(c for _, c in ff)
        result.update(ratio_best=ratio, ratio_median=ratio_median, cpu_ratio=cpu_ratio,
                      passed=ratio <= 1.15)
        print(f"wall-time ratio (best) {ratio:.3f}, (median) {ratio_median:.3f}; "
              f"CPU-time ratio {cpu_ratio:.3f}; target <= 1.15: "
              f"{'PASS' if ratio <= 1.15 else 'FAIL'}")
    else:
        print("ffmpeg not found: the ffmpeg comparison row is skipped")
        result["ffmpeg"] = "missing"
    out = RESULTS / "pipeline.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
