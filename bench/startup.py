"""How long the main window takes to show in a fresh interpreter, and whether torch stayed out.

The goal is that the window shows within 2 s: nothing imports torch, the models or the engines
before the user asks for a restore. The suite checks the torch part (tests/ui/test_widgets.py);
the seconds are measured here, where a loaded machine cannot fail a test run.

    python bench/startup.py [--runs 5]

Prints a table and writes bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GOAL_SECONDS = 2.0
# Run in a child interpreter: prints "<seconds to the first shown window> <torch imported?>".
CHILD = (
    "import time, sys; t = time.perf_counter();"
    "from seedvr_desktop.ui.app import create_application;"
    "app = create_application([]);"
    "from seedvr_desktop.ui.main_window import MainWindow;"
    "w = MainWindow(); w.show(); app.processEvents();"
    "elapsed = time.perf_counter() - t;"
    "loaded = 'torch' in sys.modules;"
    "w.shutdown(); print(f'{elapsed:.3f} {loaded}')"
)


def one_start(config: Path) -> tuple[float, bool]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SEEDVR_DESKTOP_CONFIG_DIR": str(config)}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.split()
    return float(out[-2]), out[-1] == "True"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        starts = [one_start(Path(folder)) for _ in range(max(1, args.runs))]
    seconds = [s for s, _ in starts]
    result = {"runs": len(starts), "median_s": round(statistics.median(seconds), 3),
              "max_s": round(max(seconds), 3), "torch_loaded": any(t for _, t in starts),
              "goal_s": GOAL_SECONDS, "load": os.getloadavg()[0]}
    print(f"{'measure':<24}{'value':>10}  goal")
    print(f"{'window shown, median':<24}{result['median_s']:>9.2f}s  <= {GOAL_SECONDS:g} s")
    print(f"{'window shown, slowest':<24}{result['max_s']:>9.2f}s")
    print(f"{'torch imported':<24}{result['torch_loaded']!s:>10}  False")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / ".startup.json.tmp"
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    os.replace(tmp, RESULTS / "startup.json")
    print(f"wrote {RESULTS / 'startup.json'}")
    return 0 if result["median_s"] <= GOAL_SECONDS and not result["torch_loaded"] else 1


if __name__ == "__main__":
    sys.exit(main())
