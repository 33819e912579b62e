#!/usr/bin/env bash
# Register SeedVR Desktop with the Linux desktop: menu entry, icons, "Open with" for videos.
#
# Works from two places:
#   - the unpacked app folder (dist/seedvr-desktop/install-desktop.sh): the menu entry starts the
#     bundled executable next to this script, icons come from the bundle;
#   - a source checkout (packaging/linux/install-desktop.sh) after `pip install`: the entry starts
#     `seedvr-desktop` from PATH, icons come from build/icons (python packaging/make_icons.py).
#
# Usage: install-desktop.sh [--prefix DIR] [--exec PROGRAM] [--uninstall]
#   --prefix DIR     data folder to install into (default: ${XDG_DATA_HOME:-~/.local/share};
#                    use /usr/local/share as root for all users)
#   --exec PROGRAM   program the menu entry starts (default: see above)
#   --uninstall      remove what an earlier run installed under the prefix
set -euo pipefail

NAME=seedvr-desktop
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${XDG_DATA_HOME:-$HOME/.local/share}"
program=""
uninstall=0

die() { echo "install-desktop: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
        --exec) [ $# -ge 2 ] || die "--exec needs a program"; program="$2"; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

refresh_caches() {
    # Optional tools: menus pick up changes without them too, only later.
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$prefix/applications" || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$prefix/icons/hicolor/index.theme" ]; then
        gtk-update-icon-cache -q -t "$prefix/icons/hicolor" || true
    fi
}

if [ "$uninstall" = 1 ]; then
    rm -f "$prefix/applications/$NAME.desktop"
    rm -f "$prefix"/icons/hicolor/*/apps/"$NAME".png "$prefix/icons/hicolor/scalable/apps/$NAME.svg"
    refresh_caches
    echo "removed $NAME from $prefix"
    exit 0
fi

# The program the menu entry starts.
if [ -z "$program" ]; then
    if [ -x "$here/$NAME" ]; then
        program="$here/$NAME"
    elif command -v "$NAME" >/dev/null 2>&1; then
        program="$(command -v "$NAME")"
    else
        die "no $NAME program next to this script or on PATH; pass --exec PROGRAM"
    fi
fi
[ -x "$program" ] || die "$program is not an executable program"

# The icons: inside the app folder, or rendered into build/icons of a checkout.
icons=""
for candidate in "$here/_internal/resources/icons/hicolor" "$here/../../build/icons/hicolor"; do
    if [ -d "$candidate" ]; then icons="$(cd "$candidate" && pwd)"; break; fi
done
[ -n "$icons" ] || die "no rendered icons found; run: python packaging/make_icons.py"

desktop_src="$here/$NAME.desktop"
[ -f "$desktop_src" ] || die "missing $desktop_src"

# Desktop Entry quoting: an argument with spaces goes in double quotes, and inside them ", `, $
# and \ are escaped with a backslash.
quote_exec() {
    local s="$1"
    case "$s" in
        *[[:space:]\"\`\$\\]*)
            s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//\`/\\\`}"; s="${s//\$/\\\$}"
            printf '"%s"' "$s" ;;
        *) printf '%s' "$s" ;;
    esac
}
exec_field="$(quote_exec "$program")"
# In a .desktop file a backslash in a value must itself be written as \\.
exec_value="${exec_field//\\/\\\\}"
version="$("$program" --version 2>/dev/null | awk '{print $NF}' || true)"

installed=0
while IFS= read -r -d '' png; do
    size_dir="$(basename "$(dirname "$(dirname "$png")")")"
    install -D -m 0644 "$png" "$prefix/icons/hicolor/$size_dir/apps/$NAME.png"
    installed=$((installed + 1))
done < <(find "$icons" -path "*/apps/$NAME.png" -print0)
[ "$installed" -gt 0 ] || die "no $NAME.png icons under $icons"
if [ -f "$icons/scalable/apps/$NAME.svg" ]; then
    install -D -m 0644 "$icons/scalable/apps/$NAME.svg" "$prefix/icons/hicolor/scalable/apps/$NAME.svg"
fi

mkdir -p "$prefix/applications"
tmp="$(mktemp "$prefix/applications/.$NAME.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# Values go through the environment: `awk -v` would undo the backslash escaping above.
EXEC_VALUE="$exec_value" TRY_EXEC="${program//\\/\\\\}" APP_VERSION="$version" awk '
    /^Exec=/ { print "Exec=" ENVIRON["EXEC_VALUE"] " %F"; next }
    /^TryExec=/ { print "TryExec=" ENVIRON["TRY_EXEC"]; next }
    { print }
    END { if (ENVIRON["APP_VERSION"] != "") print "X-SeedVR-Desktop-Version=" ENVIRON["APP_VERSION"] }
' "$desktop_src" > "$tmp"
chmod 0644 "$tmp"
if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$tmp" || die "the generated menu entry does not validate"
fi
mv -f "$tmp" "$prefix/applications/$NAME.desktop"
trap - EXIT
refresh_caches

echo "installed $NAME${version:+ $version}: menu entry $prefix/applications/$NAME.desktop," \
     "$installed icon sizes, starts $program"
