#!/usr/bin/env bash
# scripts/setup.sh - make sure GatewayWorker-C can be built and run on this machine,
# then build it. Called by scripts/start_all.sh (start, restart, build); safe to run
# by hand, and fast when there is nothing to do.
#
#   1. installs the missing build dependencies with apt-get (Debian/Ubuntu; as root,
#      or through sudo when it is there);
#   2. configures build/ with meson when it is not configured yet;
#   3. compiles (meson/ninja rebuild only what changed: a no-op takes a moment).
#
# Environment: GW_BUILD_DIR (default <repo>/build).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${GW_BUILD_DIR:-$root/build}

say() { printf 'setup: %s\n' "$*" >&2; }

# ---- dependencies ----------------------------------------------------------------
pkgs=(gcc meson ninja-build pkg-config libuv1-dev libnanomsg-dev libjansson-dev check libssl-dev)

have_everything() {
    command -v cc >/dev/null && command -v meson >/dev/null && command -v ninja >/dev/null &&
        command -v pkg-config >/dev/null &&
        pkg-config --exists 'libuv >= 1.44' 'nanomsg >= 1.1.5' 'jansson >= 2.14' 'check >= 0.15' \
            'libcrypto >= 3.0'
}

if ! have_everything; then
    if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
        say "missing build dependencies, and this is not a Debian-like system."
        say "install: a C compiler, meson, ninja, pkg-config, libuv >= 1.44, nanomsg >= 1.1.5,"
        say "         jansson >= 2.14, check >= 0.15, OpenSSL libcrypto >= 3.0"
        exit 1
    fi
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=()
        if [ "$(id -u)" != 0 ]; then
            if ! command -v sudo >/dev/null; then
                say "missing packages: ${missing[*]}"
                say "run as root (or install them: apt-get install ${missing[*]})"
                exit 1
            fi
            sudo=(sudo)
        fi
        say "installing ${missing[*]} (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! have_everything; then
        say "the build dependencies are still not usable (pkg-config cannot find them)"
        exit 1
    fi
fi

# ---- build -----------------------------------------------------------------------
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$build/build.ninja" ]; then
    say "configuring $build (meson)"
    if ! meson setup "$build" "$root" >"$log" 2>&1; then
        cat "$log" >&2
        say "meson setup failed"
        exit 1
    fi
    say "building (the first build takes a minute)"
fi
if ! meson compile -C "$build" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    say "the build failed (full output above, last 60 lines)"
    exit 1
fi
