#!/bin/sh
# Print the path of a Chromium for `make browser-test`. None on PATH (and no $CHROMIUM): install
# Debian's `chromium` package with apt-get (root, or password-less sudo). Cannot: one line, exit 1.
# Only the distribution's package is used: nothing is downloaded from outside the package registries.
set -u
find_chromium() {
    for c in "${CHROMIUM:-}" chromium chromium-browser; do
        [ -n "$c" ] && command -v "$c" 2>/dev/null && return 0
    done
    return 1
}
fail() {
    echo "browser-test: no Chromium ($1): install Debian's package (sudo apt-get install chromium) or set CHROMIUM=/path/to/chromium" >&2
    exit 1
}
find_chromium && exit 0
command -v apt-get >/dev/null 2>&1 || fail "and no apt-get to install it"
if [ "$(id -u)" = 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
else fail "and apt-get needs root"; fi
echo "browser-test: Chromium is missing: installing Debian's 'chromium' package with apt-get (about 25 packages, 125 MB download, ~15 s) ..." >&2
$SUDO apt-get update -qq >&2 || fail "apt-get update failed"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2 \
    || fail "apt-get install chromium failed"
find_chromium || fail "apt-get installed no chromium binary"
