#!/usr/bin/env bash
# scripts/start_all.sh - run GatewayWorker-C on this host (one supervisor, gw-master,
# which starts and watches the register, gateway and business worker processes).
#
#   scripts/start_all.sh [start] [-d]      start (foreground: Ctrl-C stops all; -d: daemon)
#   scripts/start_all.sh stop              graceful stop of everything
#   scripts/start_all.sh restart [-d]      stop, then start
#   scripts/start_all.sh reload            rolling restart of the business workers
#   scripts/start_all.sh status [--json]   per process: pid, memory, connections, ...
#   scripts/start_all.sh connections [--json]  every client: id, gateway, address,
#                                          protocol, uid, groups, idle time
#   scripts/start_all.sh build             install what is missing and build, no more
#
# Options: --config FILE (default config/gatewayworker.json), --no-build (start
# without checking the build). `start` and `restart` first run scripts/setup.sh:
# apt-get installs missing dependencies, meson configures and builds build/ (a quick
# no-op when nothing changed). docs/OPERATIONS.md is the operator's guide.
#
# Environment: GW_BUILD_DIR (default <repo>/build).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${GW_BUILD_DIR:-$root/build}
master=$build/supervisor/gw-master

usage() {
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

cmd=
config=$root/config/gatewayworker.json
daemon=()
json=()
build_first=1
while [ $# -gt 0 ]; do
    case $1 in
    start | stop | restart | reload | status | connections | build)
        [ -z "$cmd" ] || { usage >&2; exit 2; }
        cmd=$1 ;;
    -d | --daemon) daemon=(-d) ;;
    --json) json=(--json) ;;
    --config) [ $# -ge 2 ] || { usage >&2; exit 2; }; config=$2; shift ;;
    --config=*) config=${1#--config=} ;;
    --no-build) build_first=0 ;;
    --build) build_first=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "start_all.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
cmd=${cmd:-start}

if [ ! -f "$config" ]; then
    echo "start_all.sh: no configuration file $config" >&2
    exit 2
fi

need_master() {
    if [ ! -x "$master" ]; then
        echo "GatewayWorker-C is not built ($master is missing): run scripts/start_all.sh start" >&2
        exit 1
    fi
}

case $cmd in
build)
    exec "$root/scripts/setup.sh"
    ;;
start)
    [ "$build_first" = 0 ] || "$root/scripts/setup.sh"
    need_master
    # exec: in the foreground the master is this process, so Ctrl-C reaches it (and
    # its children, which are in its process group).
    exec "$master" --config "$config" "${daemon[@]}" start
    ;;
restart)
    [ "$build_first" = 0 ] || "$root/scripts/setup.sh"
    need_master
    if ! "$master" --config "$config" stop; then
        # Only "not running" is fine here: a master that still answers did not stop.
        if "$master" --config "$config" status >/dev/null 2>&1; then
            echo "start_all.sh: the running master did not stop; not starting another" >&2
            exit 1
        fi
    fi
    exec "$master" --config "$config" "${daemon[@]}" start
    ;;
stop | reload | status)
    need_master
    exec "$master" --config "$config" "${json[@]}" "$cmd"
    ;;
connections)
    # Asked of the gateways themselves (through the registers), as gwctl does.
    [ -x "$build/gwclient/gwctl" ] || { echo "start_all.sh: $build/gwclient/gwctl is missing" >&2; exit 1; }
    exec "$build/gwclient/gwctl" --config "$config" "${json[@]}" connections
    ;;
esac
