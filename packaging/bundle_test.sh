#!/usr/bin/env bash
# Smoke test of the built app folder, the way a user meets it: no Python, no checkout needed.
#
#   1. `--version` prints the version from the package metadata (the one in pyproject.toml);
#   2. `restore` with the classic engine on the sample clip shipped in the bundle: exit 0 and an
#      output with every frame of the sample, checked with the bundle's own `probe`;
#   3. `--self-test`: main window offscreen, a clip imported, a preview restored and one split
#      compare frame drawn and checked (screenshot kept in build/bundle-test/selftest.png), then
#      torch loaded and run once;
# then start-up is timed (launch to the main window shown, median of STARTUP_RUNS runs) against
# STARTUP_LIMIT_S, offscreen through the self-test's probe and, on Linux with Xvfb and xwininfo,
# for the real GUI on a private X server; bundle size, build time and start-up time are printed.
#
# Usage: packaging/bundle_test.sh [APP_FOLDER]      (default: build/dist/seedvr-desktop)
# Environment: STARTUP_LIMIT_S (default 2.0), STARTUP_RUNS (default 3),
#              BUNDLE_BUILD_SECONDS (else read from build/bundle-build-seconds, written by make).
# Exit status: 0 when every check passed, 1 otherwise (every check runs either way).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
app_dir="${1:-$root/build/dist/seedvr-desktop}"
out="$root/build/bundle-test"
limit="${STARTUP_LIMIT_S:-2.0}"
runs="${STARTUP_RUNS:-3}"

exe=""
for candidate in "$app_dir/seedvr-desktop" "$app_dir/seedvr-desktop.exe" \
                 "$app_dir/Contents/MacOS/seedvr-desktop"; do
    if [ -x "$candidate" ]; then exe="$candidate"; break; fi
done
if [ -z "$exe" ]; then
    echo "bundle-test: no seedvr-desktop executable in $app_dir (run make bundle first)" >&2
    exit 1
fi

rm -rf "$out"
mkdir -p "$out"
# Keep the app away from the user's settings, models and logs; no display needed.
export SEEDVR_DESKTOP_CONFIG_DIR="$out/config" SEEDVR_DESKTOP_DATA_DIR="$out/data"
export SEEDVR_DESKTOP_LOG_DIR="$out/logs" QT_QPA_PLATFORM=offscreen

failures=0
pass() { printf '  PASS  %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
now() {  # wall-clock seconds with a fraction; macOS date has no %N, perl is always there
    local t
    t="$(date +%s.%N)"
    case "$t" in
        *N) perl -MTime::HiRes=time -e 'printf "%.6f\n", time' ;;
        *) echo "$t" ;;
    esac
}
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
json_number() { grep -o "\"$1\": *[0-9]*" | head -n 1 | grep -o '[0-9]*$'; }

echo "bundle-test: $exe"

# 1. --version --------------------------------------------------------------------------------
expected="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/pyproject.toml" | head -n 1)"
t0="$(now)"
version_out="$("$exe" --version 2>"$out/version.err")"
rc=$?
version_s="$(elapsed "$t0")"
if [ $rc -eq 0 ] && [ "$version_out" = "seedvr-desktop $expected" ]; then
    pass "--version: '$version_out' (${version_s} s)"
else
    fail "--version: exit $rc, printed '$version_out', expected 'seedvr-desktop $expected'"
    sed 's/^/        /' "$out/version.err"
fi

# 2. restore with the classic engine on the bundled sample --------------------------------------
sample="$(find "$app_dir" -path '*resources/sample/*.mp4' ! -name '*.restored.*' | head -n 1)"
restored="$out/sample.restored.mp4"
if [ -z "$sample" ]; then
    fail "restore: no sample clip under resources/sample in the bundle"
else
    t0="$(now)"
    "$exe" restore "$sample" -o "$restored" --engine classic >"$out/restore.log" 2>&1
    rc=$?
    restore_s="$(elapsed "$t0")"
    in_frames="$("$exe" probe --json "$sample" 2>/dev/null | json_number frame_count)"
    out_frames="$("$exe" probe --json "$restored" 2>/dev/null | json_number frame_count)"
    if [ $rc -eq 0 ] && [ -n "$in_frames" ] && [ "$in_frames" = "$out_frames" ]; then
        pass "restore --engine classic: $out_frames of $in_frames frames (${restore_s} s)"
    else
        fail "restore --engine classic: exit $rc, frames ${out_frames:-none} of ${in_frames:-?}"
        tail -n 5 "$out/restore.log" | sed 's/^/        /'
    fi
fi

# 3. --self-test ---------------------------------------------------------------------------------
t0="$(now)"
SEEDVR_DESKTOP_STARTUP_T0="$t0" SEEDVR_DESKTOP_SELFTEST_SCREENSHOT="$out/selftest.png" \
    "$exe" --self-test >"$out/selftest.log" 2>&1
rc=$?
selftest_s="$(elapsed "$t0")"
if [ $rc -eq 0 ] && grep -q '^self-test passed' "$out/selftest.log" && [ -s "$out/selftest.png" ]; then
    pass "--self-test (${selftest_s} s): $(grep '^self-test passed' "$out/selftest.log")"
else
    fail "--self-test: exit $rc"
    grep -v 'propagateSizeHints' "$out/selftest.log" | tail -n 5 | sed 's/^/        /'
fi

# Start-up: process start to the main window shown, median of several runs ----------------------
judge_startup() {  # judge_startup LABEL TIME...: median against the limit; sets $median
    local label="$1"; shift
    local sorted
    sorted="$(printf '%s\n' "$@" | sort -n | tr '\n' ' ')"
    median="$(printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
    if awk -v m="$median" -v l="$limit" 'BEGIN { exit !(m <= l) }'; then
        pass "start-up, $label: median ${median} s (runs: ${sorted% }), limit ${limit} s"
    else
        fail "start-up, $label: median ${median} s (runs: ${sorted% }) is over ${limit} s"
    fi
}

# (a) The self-test's probe: same start path as the GUI, offscreen, stops once the window is shown.
times=()
for _ in $(seq "$runs"); do
    t0="$(now)"
    line="$(SEEDVR_DESKTOP_STARTUP_T0="$t0" SEEDVR_DESKTOP_STARTUP_PROBE=1 "$exe" --self-test 2>>"$out/startup.err")"
    value="$(printf '%s\n' "$line" | sed -n 's/.*window shown \([0-9.]*\) s.*/\1/p')"
    [ -n "$value" ] && times+=("$value")
done
if [ "${#times[@]}" -eq "$runs" ]; then
    judge_startup "offscreen probe" "${times[@]}"
    probe_median="$median"
else
    fail "start-up: only ${#times[@]} of $runs timing runs reported a time"
    tail -n 3 "$out/startup.err" | sed 's/^/        /'
fi

# (b) Linux with Xvfb and xwininfo: the real GUI (no arguments) on a private X server, timed until
#     its main window is mapped. This is the number a user sees.
gui_median=""
if [ "$(uname -s)" = Linux ] && command -v Xvfb >/dev/null 2>&1 && command -v xwininfo >/dev/null 2>&1; then
    : >"$out/xvfb.display"
    Xvfb -displayfd 3 -screen 0 1600x1000x24 -nolisten tcp 3>"$out/xvfb.display" 2>"$out/xvfb.log" &
    xvfb_pid=$!
    for _ in $(seq 100); do [ -s "$out/xvfb.display" ] && break; sleep 0.05; done
    display=":$(head -n 1 "$out/xvfb.display")"
    times=()
    for _ in $(seq "$runs"); do
        t0="$(now)"
        DISPLAY="$display" QT_QPA_PLATFORM=xcb "$exe" >>"$out/gui.log" 2>&1 &
        gui_pid=$!
        deadline=$(( $(date +%s) + 30 ))
        while [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$gui_pid" 2>/dev/null; do
            # The main window carries the app's WM_CLASS; Qt's 1x1 helper windows do not.
            id="$(xwininfo -display "$display" -root -tree 2>/dev/null \
                  | awk '/\("seedvr-desktop" "seedvr-desktop"\)/ { print $1; exit }')"
            if [ -n "$id" ] && xwininfo -display "$display" -id "$id" 2>/dev/null | grep -q IsViewable; then
                times+=("$(elapsed "$t0")")
                break
            fi
            sleep 0.01
        done
        kill "$gui_pid" 2>/dev/null
        wait "$gui_pid" 2>/dev/null
    done
    kill "$xvfb_pid" 2>/dev/null
    wait "$xvfb_pid" 2>/dev/null
    if [ "${#times[@]}" -eq "$runs" ]; then
        judge_startup "GUI on Xvfb" "${times[@]}"
        gui_median="$median"
    else
        fail "start-up, GUI on Xvfb: the main window appeared in ${#times[@]} of $runs runs"
        tail -n 3 "$out/gui.log" | sed 's/^/        /'
    fi
else
    echo "  SKIP  start-up, GUI on Xvfb: needs Linux with Xvfb and xwininfo (x11-utils)"
fi

# Figures ------------------------------------------------------------------------------------------
size_mb="$(du -sm "$app_dir" | cut -f1)"
files="$(find "$app_dir" -type f | wc -l | tr -d ' ')"
build_s="${BUNDLE_BUILD_SECONDS:-}"
if [ -z "$build_s" ] && [ -f "$root/build/bundle-build-seconds" ]; then
    build_s="$(cat "$root/build/bundle-build-seconds")"
fi
echo
echo "bundle size:   ${size_mb} MiB in ${files} files ($app_dir)"
echo "build time:    ${build_s:-unknown} s (PyInstaller)"
echo "start-up time: ${gui_median:-n/a} s GUI on Xvfb, ${probe_median:-n/a} s offscreen probe" \
     "(medians, launch to main window shown; limit ${limit} s)"
echo "artifacts:     $out"
if [ "$failures" -gt 0 ]; then
    echo "bundle-test: $failures check(s) FAILED"
    exit 1
fi
echo "bundle-test: all checks passed"
