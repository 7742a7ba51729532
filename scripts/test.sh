#!/usr/bin/env bash
# The project's test command (README, .ci/run): on a fresh Debian 12 machine, as
# root, installs what the build and the tests need, builds with meson, and runs
# every suite: unit (Check), integration (real processes on loopback), the
# multi-host suite (network namespaces; skipped with a message where they cannot
# be made), the JavaScript client tests and the browser end-to-end tests.
#
#   scripts/test.sh                 everything
#   scripts/test.sh --suite unit    one meson suite (unit, integration, e2e, ...)
#   GW_SANITIZE=1 scripts/test.sh   also run unit and integration under ASan+UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { printf '\n== %s\n' "$*"; }

# ---- dependencies -------------------------------------------------------------
need_pkgs=(gcc meson ninja-build pkg-config libuv1-dev libnanomsg-dev libjansson-dev check
           libssl-dev python3 nodejs npm chromium iproute2 curl procps)
missing=()
for p in "${need_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may have its own node/npm on PATH (not from apt): that is enough.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/test.sh: missing packages (${missing[*]}); run as root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- build --------------------------------------------------------------------
build=${GW_BUILD_DIR:-$root/build}
log "building in $build"
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" >/dev/null
fi
meson compile -C "$build"

# ---- tests --------------------------------------------------------------------
log "meson test"
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"

if [ "${GW_SANITIZE:-0}" = 1 ] && [ $# -eq 0 ]; then
    asan="$build-asan"
    log "sanitizer build in $asan"
    [ -f "$asan/build.ninja" ] || meson setup "$asan" -Db_sanitize=address,undefined >/dev/null
    meson compile -C "$asan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$asan" --print-errorlogs --num-processes 2 --suite unit --suite integration
fi
log "all tests passed"
