#!/usr/bin/env bash
# The project's test command (README, .ci/run): on a fresh Debian 12 machine, as
# root, installs what the build and the tests need, builds with meson, and runs
# every suite: unit (Check), integration (real processes on loopback, including
# the supervisor and the multi-host suite in network namespaces, which is skipped
# with a message where namespaces cannot be made), the JavaScript client tests and
# the browser end-to-end tests.
#
#   scripts/test.sh                 everything
#   scripts/test.sh --suite unit    one meson suite (unit, integration, js, e2e)
#   GW_SANITIZE=1 scripts/test.sh   also run unit and integration under ASan+UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { printf '\n== %s\n' "$*"; }

# Build dependencies and the build itself (build/, or GW_BUILD_DIR).
scripts/setup.sh
build=${GW_BUILD_DIR:-$root/build}

# What only the tests need: Python for the integration suite, Node and Chromium for
# the client and browser tests, iproute2 for the network-namespace hosts, and nginx
# for the load-balancer example of docs/DEPLOY.md.
extras=(python3 iproute2 procps curl chromium nginx-light)
command -v node >/dev/null && command -v npm >/dev/null || extras+=(nodejs npm)
missing=()
for p in "${extras[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/test.sh: missing packages (${missing[*]}); run as root to install them" >&2
        exit 1
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

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
