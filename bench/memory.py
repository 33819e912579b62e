"""Peak memory does not grow with video length: restore a 10 s and a 60 s 720p clip.

Each restore runs in its own process; its peak resident set size comes from wait4's rusage
(ru_maxrss). Two paths are measured: the chunked path (engine `none` with a resize, so frames go
through float conversion, chunks, the blender and the RGB encoder input) and the pass-through
path (engine `none` at the source size). Target: peak(60 s) / peak(10 s) <= 1.10 for each.

    python bench/memory.py

Prints a table and writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import RESULTS, make_clip

PATHS = {
    "chunked (none, 720p -> 1080p)": ["--engine", "none", "--short-side", "1080"],
    "pass-through (none, 720p)": ["--engine", "none"],
}


def peak_rss(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-500:]}")
    return usage.ru_maxrss / 1024.0, wall  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=10, help="seconds of the short clip")
    parser.add_argument("--long", type=int, default=60, help="seconds of the long clip")
    args = parser.parse_args(argv)

    clips = {s: make_clip(RESULTS / f"bench_720p_{s}s.mp4", s, size=(1280, 720))
             for s in (args.short, args.long)}
    work = RESULTS / "work"
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"target_ratio": 1.10, "paths": {}}
    print(f"{'path':<32} {'10 s MiB':>9} {'60 s MiB':>9} {'ratio':>6}  {'wall s':>13}")
    ok = True
    for name, extra in PATHS.items():
        peaks, walls = {}, {}
        for seconds, clip in clips.items():
            cmd = [sys.executable, "-m", "seedvr_desktop", "restore", str(clip), "-o",
                   str(work / f"mem_{seconds}.mp4"), "--preset", "veryfast", "--overwrite",
                   *extra]
            peaks[seconds], walls[seconds] = peak_rss(cmd)
        ratio = peaks[args.long] / peaks[args.short]
        ok &= ratio <= 1.10
        result["paths"][name] = {  # type: ignore[index]
            "peak_mib": {str(k): v for k, v in peaks.items()},
            "wall_s": {str(k): v for k, v in walls.items()}, "ratio": ratio}
        print(f"{name:<32} {peaks[args.short]:>9.1f} {peaks[args.long]:>9.1f} {ratio:>6.3f}  "
              f"{walls[args.short]:>5.1f} / {walls[args.long]:>5.1f}")
    result["passed"] = ok
    print(f"target peak(long)/peak(short) <= 1.10: {'PASS' if ok else 'FAIL'}")
    out = RESULTS / "memory.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    for f in work.glob("mem_*"):
        f.unlink()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
