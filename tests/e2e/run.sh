#!/usr/bin/env bash
# tests/e2e/run.sh - the browser end-to-end tests (tests/e2e/browser.test.mjs).
#
# Installs what is missing (as root on Debian 12: chromium with apt-get, Node.js
# and npm with apt-get when there is no node; playwright-core with npm, pinned in
# tests/e2e/package.json, into tests/e2e/node_modules; no browser download), then
# runs the scenarios against clusters it starts itself on free loopback ports.
# Exits non-zero when anything fails. Screenshots go to tests/e2e/artifacts/.
#
#   tests/e2e/run.sh                      uses build/ (built with meson if missing)
#   GW_BUILD_DIR=build-x tests/e2e/run.sh
#   meson test -C build --suite e2e       (what CI runs)
#
# Environment: GW_BUILD_DIR, CHROMIUM (default /usr/bin/chromium), GW_E2E_MODULE
# (default: $GW_BUILD_DIR/tests/e2e/libgw_e2emod.so, compiled here when absent),
# E2E_ARTIFACTS, GW_TEST_KEEP (keep temp dirs), GW_TEST_DEBUG (debug logs).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${GW_BUILD_DIR:-$root/build}
build=$(cd "$root" && realpath -m "$build")
chromium=${CHROMIUM:-/usr/bin/chromium}

say() { printf 'e2e: %s\n' "$*"; }
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "e2e: missing $* (install it, or run as root on Debian to have it installed)" >&2
        exit 1
    fi
    say "apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$@" >/dev/null
}

# ---- the browser and node ---------------------------------------------------------
[ -x "$chromium" ] || apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "e2e: node $(node --version) is too old (need 20 or later)" >&2
    exit 1
fi

# ---- playwright-core (the version pinned in package.json) -------------------------
want=$(node -p "require('$here/package.json').dependencies['playwright-core']")
have=$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch (e) { '' }")
if [ "$have" != "$want" ]; then
    say "npm install playwright-core@$want"
    if [ -f "$here/package-lock.json" ]; then
        npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
    else
        npm install --prefix "$here" --no-audit --no-fund --loglevel=error
    fi
fi

# ---- the cluster's binaries and the e2e module ---------------------------------------
if [ ! -x "$build/gateway/gw-gateway" ] || [ ! -f "$build/examples/chat/libgw_chat.so" ]; then
    say "building in $build"
    [ -f "$build/build.ninja" ] || meson setup "$build" "$root" >/dev/null
    meson compile -C "$build" >/dev/null
fi
tmp=$(mktemp -d /tmp/gw-e2e-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
module=${GW_E2E_MODULE:-$build/tests/e2e/libgw_e2emod.so}
if [ ! -f "$module" ]; then
    # A build without tests/e2e in meson (e.g. -Dtests=false): compile it here.
    module=$tmp/libgw_e2emod.so
    say "compiling e2emod.c into $module"
    cc -std=c11 -D_GNU_SOURCE -O1 -Wall -Wextra -fPIC -shared -fvisibility=hidden \
        -I"$root/include" -I"$root" $(pkg-config --cflags jansson) \
        "$here/e2emod.c" -o "$module" $(pkg-config --libs jansson)
fi

# ---- run ----------------------------------------------------------------------------
say "build $build, chromium $("$chromium" --version 2>/dev/null | head -1), node $(node --version), playwright-core $want"
export GW_BUILD_DIR=$build GW_E2E_MODULE=$module CHROMIUM=$chromium
start=$(date +%s)
status=0
node --experimental-websocket --test "$here/browser.test.mjs" || status=$?
say "finished in $(( $(date +%s) - start )) s, exit status $status"
exit $status
