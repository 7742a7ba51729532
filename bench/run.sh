#!/usr/bin/env bash
# bench/run.sh - the benchmark suite of issue #5: runs every scenario against the
# project (gw-register + gw-gateway + gw-businessworker, release build, bench config)
# and, side by side in the same run, against the single-process C echo server
# (bench/gw-echo-server) and a Node `ws` echo server (bench/node), then writes
# docs/BENCHMARKS.md from what it measured.
#
#   bench/run.sh              the full run (about 30 minutes; medians of 3 runs, 5 for 100 x 1)
#   bench/run.sh --quick      a few seconds per scenario, small scales: for trying
#
# options:
#   --quick            short windows, 12,000 idle connections, 6,000 for heartbeat,
#                      one run each, no heartbeat ladder
#   --reps N           runs per measurement (default 3; --quick 1); medians are reported
#   --only LIST        comma-separated subset of: echo,connect,broadcast,idle,heartbeat
#   --build-dir DIR    release build to use/create (default <repo>/build-perf)
#   --out FILE         the document to write (default docs/BENCHMARKS.md; --quick:
#                      bench/results/<date>/BENCHMARKS.md unless given)
#   --no-profile       skip the perf profiles
#   -h, --help         this text
#
# Everything it starts is stopped on exit, also on Ctrl-C. Raw results (every
# gw-bench JSON line, the cluster configs, logs, perf reports) go to
# bench/results/<date>/ (git-ignored).
#
# Needs: Debian's build dependencies (installed by scripts/setup.sh when missing),
# python3, node and npm (for the Node reference), perf (profiles; optional).
# Ports (all below the ephemeral range): 20000 (cluster WebSocket), 20100-20105
# (gw-echo-server), 20200-20205 (Node), 21238-21239 (register), 22900-22905
# (gateway inboxes), 23900 (worker inbox). Source addresses 127.0.0.2-127.0.0.101.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-perf
QUICK=0
REPS=
ONLY=echo,connect,broadcast,idle,heartbeat
OUT=
PROFILE=1

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --build-dir) BUILD=$(realpath -m "$2"); shift ;;
    --out) OUT=$(realpath -m "$2"); shift ;;
    --no-profile) PROFILE=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

STAMP=$(date -u +%Y%m%d-%H%M%S)
RES=$ROOT/bench/results/$STAMP
mkdir -p "$RES/raw" "$RES/logs" "$RES/profiles"
RESULTS=$RES/results.jsonl
: >"$RESULTS"
if [ -z "$OUT" ]; then
    if [ $QUICK = 1 ]; then OUT=$RES/BENCHMARKS.md; else OUT=$ROOT/docs/BENCHMARKS.md; fi
fi

# ---- parameters ------------------------------------------------------------------
WS_PORT=20000
ES_PORT=20100
NODE_PORT=20200
REG_PORT=21238
GW_INBOX=22900
BW_INBOX=23900
SOURCES=127.0.0.2-127.0.0.101 # 100 source addresses
MAX_PER_PROC=16667            # connections per generator / reference process (< 20,000 fds)
IDLE_GATEWAYS=6
IDLE_PING_INTERVAL=55
IDLE_PING_LIMIT=2
IDLE_BEAT=25
if [ $QUICK = 1 ]; then
    REPS=${REPS:-1}
    REPS_LAT=$REPS
    ECHO_D=2; ECHO_W=0.5
    BC_D=2; BC_W=0.5
    CONN_D=2
    IDLE_CONNS=12000; IDLE_SETTLE=1; IDLE_WINDOW=5; IDLE_WINDOWS=1
    HB_CONNS=6000; HB_BEATING=600; HB_INTERVAL=2; HB_LIMIT=2; HB_SPREAD_PACED=2
    HB_LADDER=""
    PROF_MSGS=1000000; PROF_MSGS1=100000; PROF_BCASTS=100
else
    REPS=${REPS:-3}
    REPS_LAT=$((REPS > 5 ? REPS : 5)) # p99 comparisons are the noisiest: 5 paired runs
    ECHO_D=10; ECHO_W=2
    BC_D=10; BC_W=2
    CONN_D=10
    IDLE_CONNS=100000; IDLE_SETTLE=5; IDLE_WINDOW=30; IDLE_WINDOWS=3
    HB_CONNS=100000; HB_BEATING=1000; HB_INTERVAL=15; HB_LIMIT=2; HB_SPREAD_PACED=10
    HB_LADDER="10000 25000 50000 75000"
    PROF_MSGS=8000000; PROF_MSGS1=500000; PROF_BCASTS=800
fi

BENCH=$BUILD/bench/gw-bench
ESRV=$BUILD/bench/gw-echo-server
GWREG=$BUILD/register/gw-register
GWGW=$BUILD/gateway/gw-gateway
GWBW=$BUILD/businessworker/gw-businessworker
ECHO_MOD=$BUILD/examples/libgw_echo.so
BCAST_MOD=$BUILD/bench/libgw_bench_bcast.so
NODE_DIR=$ROOT/bench/node
HELPER=$RES/report.py

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
wants() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- process bookkeeping: everything started here is stopped on exit -------------
PIDS=()
LAST_PID=
start_bg() { # LOG CMD... ; sets LAST_PID
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    echo "$(date +%T) [$LAST_PID] $*" >>"$RES/commands.log"
}
alive() { kill -0 "$1" 2>/dev/null; }
stop_pids() { # PID... : TERM, up to 10 s, then KILL
    local p n=0
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    while [ $n -lt 100 ]; do
        local any=0
        for p in "$@"; do alive "$p" && any=1; done
        [ $any = 0 ] && break
        sleep 0.1
        n=$((n + 1))
    done
    for p in "$@"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
    for p in "$@"; do wait "$p" 2>/dev/null; done
    local keep=() q
    for q in "${PIDS[@]}"; do
        local gone=0
        for p in "$@"; do [ "$p" = "$q" ] && gone=1; done
        [ $gone = 0 ] && keep+=("$q")
    done
    PIDS=("${keep[@]}")
}
# fg OUT ERR CMD... : runs CMD like a foreground command, but through `wait`, so that
# Ctrl-C reaches the INT trap at once even when CMD handles SIGINT itself (gw-bench does)
fg() {
    local out=$1 err=$2
    shift 2
    "$@" >"$out" 2>"$err" &
    local p=$!
    PIDS+=("$p")
    wait "$p"
    local rc=$?
    local keep=() q
    for q in "${PIDS[@]}"; do [ "$q" != "$p" ] && keep+=("$q"); done
    PIDS=("${keep[@]}")
    return $rc
}
cleanup() {
    trap - EXIT INT TERM
    if [ ${#PIDS[@]} -gt 0 ]; then
        say "stopping ${#PIDS[@]} processes"
        stop_pids "${PIDS[@]}"
    fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---- /proc accounting --------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # PID... -> utime+stime of all, in clock ticks
    local p s=0 v
    for p in "$@"; do
        v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
        s=$((s + ${v:-0}))
    done
    echo $s
}
rss_kb() { # PID... -> VmRSS sum in kB
    local p s=0 v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        s=$((s + ${v:-0}))
    done
    echo $s
}
ticks_to_s() { python3 -c "print('%.3f' % ($1 / $CLK_TCK))"; }

# ---- the helper that records results and writes the document ----------------------
write_helper() { # a copy per run: the document can be rewritten later from it
    cp "$ROOT/bench/report.py" "$HELPER"
}

# ---- build, Node, checks -------------------------------------------------------------
build() {
    if ! command -v meson >/dev/null || ! command -v ninja >/dev/null ||
        ! pkg-config --exists libuv nanomsg jansson libcrypto 2>/dev/null; then
        say "installing build dependencies (scripts/setup.sh)"
        GW_BUILD_DIR=$BUILD "$ROOT/scripts/setup.sh" || die "scripts/setup.sh failed"
    fi
    if [ ! -f "$BUILD/build.ninja" ]; then
        say "configuring $BUILD (release)"
        meson setup "$BUILD" "$ROOT" -Dbuildtype=release -Dtests=false >"$RES/logs/meson-setup.log" 2>&1 ||
            die "meson setup failed: see $RES/logs/meson-setup.log"
    fi
    local bt
    bt=$(meson introspect --buildoptions "$BUILD" 2>/dev/null |
        python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))')
    if [ "$bt" != release ]; then
        say "$BUILD has buildtype $bt: switching it to release"
        meson configure "$BUILD" -Dbuildtype=release -Dtests=false >>"$RES/logs/meson-setup.log" 2>&1 ||
            die "meson configure failed"
    fi
    say "building $BUILD"
    ninja -C "$BUILD" >"$RES/logs/build.log" 2>&1 || die "build failed: see $RES/logs/build.log"
    BUILD_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    BUILD_DIRTY=$(git -C "$ROOT" status --short --untracked-files=no -- common gateway businessworker \
        api register bench examples include 2>/dev/null | wc -l)
    git -C "$ROOT" diff --stat HEAD -- common gateway businessworker api register bench examples include \
        >"$RES/logs/build-diffstat.txt" 2>/dev/null
    for f in "$BENCH" "$ESRV" "$GWREG" "$GWGW" "$GWBW" "$ECHO_MOD" "$BCAST_MOD"; do
        [ -e "$f" ] || die "missing after the build: $f"
    done
}

node_setup() {
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the Node reference (apt-get install nodejs npm)"
    if [ ! -f "$NODE_DIR/node_modules/ws/package.json" ]; then
        say "installing ws into bench/node/node_modules (npm)"
        (cd "$NODE_DIR" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; }) \
            >"$RES/logs/npm.log" 2>&1 || die "npm install failed: see $RES/logs/npm.log"
    fi
}

check_ports() {
    local p busy=()
    for p in $WS_PORT $(seq $ES_PORT $((ES_PORT + 5))) $(seq $NODE_PORT $((NODE_PORT + 5))) \
        $REG_PORT $((REG_PORT + 1)) $(seq $GW_INBOX $((GW_INBOX + IDLE_GATEWAYS - 1))) $BW_INBOX; do
        if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then busy+=("$p"); fi
    done
    [ ${#busy[@]} -eq 0 ] || die "ports in use: ${busy[*]} (another bench/run.sh or cluster?)"
}

# ---- servers --------------------------------------------------------------------------
CL_REG=
CL_GWS=()
CL_BWS=()
CL_ROLES=
cluster_config() { # NAME GATEWAYS MODULE PING_INTERVAL PING_LIMIT HB_MSG -> path
    local cfg=$RES/cluster-$1.json
    sed -e "s#@REGISTER_PORT@#$REG_PORT#g; s#@RUN_DIR@#$RES/run-$1#; s#@GATEWAYS@#$2#; s#@WS_PORT@#$WS_PORT#;
            s#@GATEWAY_INBOX@#$GW_INBOX#; s#@PING_INTERVAL@#$4#; s#@PING_LIMIT@#$5#; s#@HEARTBEAT_MESSAGE@#$6#;
            s#@WORKERS@#1#; s#@WORKER_INBOX@#$BW_INBOX#; s#@MODULE@#$3#" \
        "$ROOT/bench/configs/cluster.json.in" >"$cfg"
    echo "$cfg"
}
listeners() { ss -Hltn "sport = :$1" 2>/dev/null | wc -l; }
start_cluster() { # NAME GATEWAYS MODULE PING_INTERVAL PING_LIMIT HB_MSG
    local name=$1 n=$2 cfg i
    cfg=$(cluster_config "$@")
    "$GWGW" --config "$cfg" --print-config >/dev/null 2>"$RES/logs/config-$name.err" ||
        die "config $cfg refused: $(cat "$RES/logs/config-$name.err")"
    CL_GWS=()
    CL_BWS=()
    start_bg "$RES/logs/$name-register.log" "$GWREG" --config "$cfg"
    CL_REG=$LAST_PID
    for ((i = 0; i < n; i++)); do
        start_bg "$RES/logs/$name-gateway$i.log" "$GWGW" --config "$cfg" --index $i
        CL_GWS+=("$LAST_PID")
    done
    start_bg "$RES/logs/$name-worker0.log" "$GWBW" --config "$cfg" --index 0
    CL_BWS+=("$LAST_PID")
    CL_ROLES="{\"$CL_REG\":\"register\""
    for i in "${CL_GWS[@]}"; do CL_ROLES+=",\"$i\":\"gateway\""; done
    for i in "${CL_BWS[@]}"; do CL_ROLES+=",\"$i\":\"worker\""; done
    CL_ROLES+="}"
    local t=0
    while [ "$(listeners $WS_PORT)" -lt "$n" ]; do
        sleep 0.1
        t=$((t + 1))
        [ $t -lt 200 ] || die "cluster $name: the gateways did not listen on $WS_PORT"
    done
    # Ready when echoes go through gateway -> worker -> gateway from every gateway.
    t=0
    until "$BENCH" echo -p $WS_PORT -c $((n * 8)) -n $((n * 8)) --timeout 2 >/dev/null 2>&1; do
        sleep 0.3
        t=$((t + 1))
        for i in $CL_REG "${CL_GWS[@]}" "${CL_BWS[@]}"; do
            alive "$i" || die "cluster $name: process $i exited (logs in $RES/logs)"
        done
        [ $t -lt 60 ] || die "cluster $name: no echo through the pipeline after 20 s"
    done
    sleep 1.5 # a node heartbeat interval and a half: a stray node would have shown up
    check_foreign "$name"
    say "cluster $name up: register $CL_REG, gateways ${CL_GWS[*]}, worker ${CL_BWS[*]}"
}
# Dies when a process this script did not start is connected to the cluster's register
# or gateway inboxes: a leftover worker of another cluster on the same register port
# takes a share of the events and runs its own module on them, which makes the figures
# and the checks meaningless.
check_foreign() { # NAME
    local ours=" $CL_REG ${CL_GWS[*]} ${CL_BWS[*]} $$ " pid p filter="( dport = :$REG_PORT"
    for ((p = GW_INBOX; p < GW_INBOX + IDLE_GATEWAYS; p++)); do filter+=" or dport = :$p"; done
    filter+=" or dport = :$BW_INBOX )"
    for pid in $(ss -Htnp state established "$filter" 2>/dev/null |
        grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        case $ours in
        *" $pid "*) ;;
        *) die "cluster $1: process $pid ($(tr '\0' ' ' </proc/$pid/cmdline 2>/dev/null)) is connected to it but was not started by this run; stop it and rerun" ;;
        esac
    done
}
stop_cluster() {
    [ -z "$CL_REG" ] || check_foreign "in the end"
    stop_pids "${CL_BWS[@]}" "${CL_GWS[@]}" "$CL_REG"
    CL_GWS=()
    CL_BWS=()
    CL_REG=
}
wait_listening() { # LOGFILE PID what
    local t=0
    until grep -q '^listening' "$1" 2>/dev/null; do
        sleep 0.1
        t=$((t + 1))
        alive "$2" || die "$3 exited: $(cat "$1")"
        [ $t -lt 100 ] || die "$3 did not start listening"
    done
}
ES_PIDS=()
NODE_PIDS=()
start_refs() { # COUNT: COUNT gw-echo-server and COUNT Node processes on consecutive ports
    local n=$1 i
    ES_PIDS=()
    NODE_PIDS=()
    for ((i = 0; i < n; i++)); do
        start_bg "$RES/logs/echo-server$i.log" "$ESRV" --ws $((ES_PORT + i)) --quiet
        ES_PIDS+=("$LAST_PID")
        wait_listening "$RES/logs/echo-server$i.log" "$LAST_PID" gw-echo-server
        start_bg "$RES/logs/node$i.log" node "$NODE_DIR/echo-server.js" --port $((NODE_PORT + i))
        NODE_PIDS+=("$LAST_PID")
        wait_listening "$RES/logs/node$i.log" "$LAST_PID" "node echo-server.js"
    done
    say "references up: gw-echo-server ${ES_PIDS[*]}, node ${NODE_PIDS[*]}"
}
stop_refs() {
    stop_pids "${ES_PIDS[@]}" "${NODE_PIDS[@]}"
    ES_PIDS=()
    NODE_PIDS=()
}

# ---- one gw-bench measurement ---------------------------------------------------------
# bench_one SCENARIO SERVER REP -- gw-bench args (without --pid/--json)
bench_one() {
    local scen=$1 srv=$2 rep=$3
    shift 4
    local port pids=() roles
    case $srv in
    project) port=$WS_PORT; pids=("$CL_REG" "${CL_GWS[@]}" "${CL_BWS[@]}"); roles=$CL_ROLES ;;
    echo-server) port=$ES_PORT; pids=("${ES_PIDS[0]}"); roles="{\"${ES_PIDS[0]}\":\"server\"}" ;;
    node) port=$NODE_PORT; pids=("${NODE_PIDS[0]}"); roles="{\"${NODE_PIDS[0]}\":\"server\"}" ;;
    esac
    local pidargs=() p
    for p in "${pids[@]}"; do pidargs+=(--pid "$p"); done
    local out=$RES/raw/$scen.$srv.$rep.json
    local cmd=("$BENCH" "$@" -p "$port" "${pidargs[@]}" --json)
    local l0 l1
    l0=$(loadavg)
    echo "$(date +%T) ${cmd[*]}" >>"$RES/commands.log"
    fg "$out" "$out.err" "${cmd[@]}"
    local rc=$?
    l1=$(loadavg)
    python3 "$HELPER" rec "$RESULTS" scenario="$scen" server="$srv" rep="$rep" load0="$l0" load1="$l1" \
        "roles=$roles" "cmd=${cmd[*]}" -- "$out" || true
    local summary
    summary=$(grep -E 'msg/s|deliveries/s|handshakes/s|cpu:' "$out.err" | tr -s ' ' | paste -sd' ')
    say "  $scen $srv #$rep: ${summary:-no summary} (exit $rc)"
}

# ---- perf profiles ---------------------------------------------------------------------
HAVE_PERF=0
perf_report() { # NAME DATAFILE
    local name=$1 data=$2 base=$RES/profiles/$1
    perf report -i "$data" --stdio 2>/dev/null | grep -m1 '^# Samples' | sed 's/^# //' >"$base.samples.txt"
    perf report -i "$data" --no-children --sort comm,dso -g none --percentage relative --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -15 >"$base.comm.txt"
    # per thread ("pid" is the thread id here): main loops vs nanomsg's I/O threads
    perf report -i "$data" --no-children --sort pid -g none --percentage relative --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -16 >"$base.tid.txt"
    perf report -i "$data" --no-children --sort comm,sym -g none --percentage relative --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -40 >"$base.sym.txt"
    perf report -i "$data" --no-children --sort comm,dso,sym -g none --percentage relative --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | grep -v '\[kernel' | grep -v '\[k\]' | head -25 >"$base.user.txt"
    # inclusive time of each system call (kernel stacks are complete; user stacks are not:
    # the release build has no frame pointers), and of softirq work done in the process
    perf report -i "$data" --children --sort comm,sym -g none --percentage relative --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | grep -E '\[k\] (__x64_sys_[a-z0-9_]+|do_writev|ksys_read|ksys_write|__sys_sendmsg|__sys_recvmsg|__sys_accept4|do_epoll_wait|do_epoll_ctl|__fput|handle_softirqs|tcp_v4_rcv|tcp_write_xmit|tcp_sendmsg_locked|tcp_recvmsg_locked|schedule|do_syscall_64)$' |
        head -40 >"$base.incl.txt"
}
# profile_start NAME PID... : perf record (cpu-clock samples) and perf stat (syscalls and
# context switches, per thread) on the PIDs until profile_finish
PERF_PIDS=()
profile_start() {
    local name=$1
    shift
    PERF_PIDS=()
    [ $HAVE_PERF = 1 ] && [ $PROFILE = 1 ] || return 0
    local list
    list=$(IFS=,; echo "$*")
    echo "perf record -e cpu-clock -F 999 -g -p $list" >"$RES/profiles/$name.cmd.txt"
    echo "perf stat -e raw_syscalls:sys_enter,sched:sched_switch --per-thread -p $list" >>"$RES/profiles/$name.cmd.txt"
    start_bg "$RES/logs/perf-$name.log" perf record -e cpu-clock -F 999 -g -p "$list" -o "$RES/profiles/$name.data"
    PERF_PIDS+=("$LAST_PID")
    start_bg "$RES/logs/perfstat-$name.log" perf stat -e raw_syscalls:sys_enter,sched:sched_switch \
        --per-thread -p "$list" -o "$RES/profiles/$name.perfstat.txt"
    PERF_PIDS+=("$LAST_PID")
    PROF_T0=$(date +%s.%N)
    sleep 0.3
}
# profile_finish NAME [UNITS UNIT] : stops perf, writes the reports; with UNITS, the
# syscalls and context switches per UNIT (else per second)
profile_finish() {
    local name=$1 units=${2:-} unit=${3:-}
    [ ${#PERF_PIDS[@]} -gt 0 ] || return 0
    local t1 p
    t1=$(date +%s.%N)
    for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    local n=0
    while [ $n -lt 300 ]; do
        local any=0
        for p in "${PERF_PIDS[@]}"; do alive "$p" && any=1; done
        [ $any = 0 ] && break
        sleep 0.1
        n=$((n + 1))
    done
    stop_pids "${PERF_PIDS[@]}"
    PERF_PIDS=()
    perf_report "$name" "$RES/profiles/$name.data"
    local secs
    secs=$(python3 -c "print('%.2f' % ($t1 - $PROF_T0))")
    python3 - "$RES/profiles/$name.perfstat.txt" "$secs" "$units" "$unit" >"$RES/profiles/$name.syscalls.txt" <<'PYEOF'
import re, sys, collections
path, secs, units, unit = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
agg = collections.OrderedDict()
for line in open(path):
    m = re.match(r'\s*(\S.*?)-(\d+)\s+([\d,]+)\s+(\S+)', line)
    if not m:
        continue
    comm, tid, val, ev = m.group(1), m.group(2), int(m.group(3).replace(',', '')), m.group(4)
    key = '%s (thread %s)' % (comm, tid)
    agg.setdefault(key, {})[ev] = val
if not agg:
    sys.exit(0)
per = float(units) if units else secs
label = ('per %s' % unit) if units else 'per second'
print('%-34s %14s %14s   (%s over %.1f s%s)' % ('thread', 'syscalls ' + label, 'switches ' + label,
      'counts', secs, (', %s %s' % ('{:,.0f}'.format(float(units)), {'delivery': 'deliveries'}.get(unit, unit + 's'))) if units else ''))
tot_sc = tot_sw = 0
for k, v in agg.items():
    sc, sw = v.get('raw_syscalls:sys_enter', 0), v.get('sched:sched_switch', 0)
    tot_sc += sc
    tot_sw += sw
    if sc == 0 and sw == 0:
        continue
    print('%-34s %14.4f %14.4f' % (k, sc / per, sw / per))
print('%-34s %14.4f %14.4f' % ('all profiled threads', tot_sc / per, tot_sw / per))
PYEOF
}

# ---- scenarios --------------------------------------------------------------------------
scenario_echo() {
    say "== echo and connect (cluster: 1 gateway + 1 worker, examples/echo)"
    start_cluster echo 1 "$ECHO_MOD" 0 0 ""
    start_refs 1
    local rep srv
    if wants echo; then
        for rep in $(seq 1 "$REPS"); do
            for srv in project echo-server node; do
                bench_one echo_100x16 $srv "$rep" -- echo -c 100 -k 16 -s 64 -d $ECHO_D -w $ECHO_W
            done
        done
        for rep in $(seq 1 "$REPS_LAT"); do
            for srv in project echo-server node; do
                bench_one echo_100x1 $srv "$rep" -- echo -c 100 -k 1 -s 64 -d $ECHO_D -w $ECHO_W
            done
        done
        # profile: one more 100 x 16 run, count-limited, with perf on the gateway and the worker
        if [ $HAVE_PERF = 1 ] && [ $PROFILE = 1 ]; then
            say "  profiling echo 100x16 ($PROF_MSGS messages)"
            profile_start echo_100x16 "${CL_GWS[@]}" "${CL_BWS[@]}"
            fg "$RES/raw/profile-echo.json" "$RES/raw/profile-echo.json.err" \
                "$BENCH" echo -p $WS_PORT -c 100 -k 16 -s 64 -n $PROF_MSGS --json
            profile_finish echo_100x16 $PROF_MSGS message
            # and 100 x 1: the latency case (one message per connection in flight)
            say "  profiling echo 100x1 ($PROF_MSGS1 messages)"
            profile_start echo_100x1 "${CL_GWS[@]}" "${CL_BWS[@]}"
            fg "$RES/raw/profile-echo1.json" "$RES/raw/profile-echo1.json.err" \
                "$BENCH" echo -p $WS_PORT -c 100 -k 1 -s 64 -n $PROF_MSGS1 --json
            profile_finish echo_100x1 $PROF_MSGS1 message
        fi
    fi
    if wants connect; then
        for rep in $(seq 1 "$REPS"); do
            for srv in project echo-server node; do
                bench_one connect $srv "$rep" -- connect -c 50 -d $CONN_D --sources $SOURCES
            done
        done
    fi
    stop_refs
    stop_cluster
}

scenario_broadcast() {
    say "== broadcast (cluster: 1 gateway + 1 worker, bench/bcast_module.c)"
    start_cluster bcast 1 "$BCAST_MOD" 0 0 ""
    start_refs 1
    local rep srv n
    for n in 1000 10000; do
        for rep in $(seq 1 "$REPS"); do
            for srv in project echo-server node; do
                bench_one broadcast_$n $srv "$rep" -- broadcast -c $n -s 64 -d $BC_D -w $BC_W --timeout 30
            done
        done
    done
    if [ $HAVE_PERF = 1 ] && [ $PROFILE = 1 ]; then
        say "  profiling broadcast to 10,000 ($PROF_BCASTS broadcasts)"
        profile_start broadcast_10000 "${CL_GWS[@]}" "${CL_BWS[@]}"
        fg "$RES/raw/profile-bcast.json" "$RES/raw/profile-bcast.json.err" \
            "$BENCH" broadcast -p $WS_PORT -c 10000 -s 64 -n $PROF_BCASTS --timeout 30 --json
        profile_finish broadcast_10000 $((PROF_BCASTS * 10000)) delivery
    fi
    stop_refs
    stop_cluster
}

ctxsw() { # PID... -> voluntary context switches, summed over every thread
    local p s=0 v
    for p in "$@"; do
        v=$(cat /proc/"$p"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s + 0}')
        s=$((s + ${v:-0}))
    done
    echo $s
}

# idle_run SERVER VARIANT BEAT_INTERVAL PROFILE_NAME PORT... ; server pids in IDLE_SRV_PIDS
IDLE_SRV_PIDS=()
idle_run() {
    local srv=$1 variant=$2 beat=$3 prof=$4
    shift 4
    local ports=("$@") portargs=() p
    for p in "${ports[@]}"; do portargs+=(-p "$p"); done
    local nproc=$(((IDLE_CONNS + MAX_PER_PROC - 1) / MAX_PER_PROC))
    local per=$(((IDLE_CONNS + nproc - 1) / nproc))
    local rss0 l0 i gens=() outs=() left=$IDLE_CONNS
    rss0=$(rss_kb "${IDLE_SRV_PIDS[@]}")
    l0=$(loadavg)
    local hbargs=()
    if [ "$beat" != 0 ]; then hbargs=(--heartbeat-msg ping --heartbeat-interval "$beat"); fi
    local t0 cmd1=
    t0=$(date +%s.%N)
    for ((i = 0; i < nproc; i++)); do
        local c=$per
        [ $c -gt $left ] && c=$left
        left=$((left - c))
        local out=$RES/raw/idle.$srv.$variant.$i.json
        local cmd=("$BENCH" idle "${portargs[@]}" -c $c --conn-offset $((i * per)) --sources $SOURCES
            "${hbargs[@]}" -d 3600 --timeout 180 --concurrency 256 -v --json)
        [ -z "$cmd1" ] && cmd1="${cmd[*]}  # x $nproc processes (--conn-offset 0, $per, ...), ended with SIGTERM after the windows"
        start_bg "$out.err" "${cmd[@]}"
        # stdout (the JSON line) and stderr go to one file: the JSON line is found by its '{'
        gens+=("$LAST_PID")
        outs+=("$out.err")
    done
    # wait until every process has connected all it could
    local t=0 done_n
    while :; do
        done_n=0
        for i in "${outs[@]}"; do grep -q 'connected, .* failed' "$i" 2>/dev/null && done_n=$((done_n + 1)); done
        [ $done_n -ge $nproc ] && break
        sleep 0.2
        t=$((t + 1))
        [ $t -lt 1500 ] || { say "  idle $srv: connecting did not finish in 300 s"; break; }
    done
    local t1 connect_s
    t1=$(date +%s.%N)
    connect_s=$(python3 -c "print('%.2f' % ($t1 - $t0))")
    sleep $IDLE_SETTLE
    local w cpus=() c0 c1 x0 x1 wak=() hb0 hb1
    local msgs_rate=0
    [ "$beat" != 0 ] && msgs_rate=$(python3 -c "print('%.0f' % ($IDLE_CONNS / $beat))")
    for ((w = 0; w < IDLE_WINDOWS; w++)); do
        c0=$(cpu_ticks "${IDLE_SRV_PIDS[@]}")
        x0=$(ctxsw "${IDLE_SRV_PIDS[@]}")
        sleep $IDLE_WINDOW
        c1=$(cpu_ticks "${IDLE_SRV_PIDS[@]}")
        x1=$(ctxsw "${IDLE_SRV_PIDS[@]}")
        cpus+=("$(python3 -c "print('%.3f' % (($c1 - $c0) / $CLK_TCK / $IDLE_WINDOW * 100))")")
        wak+=("$(python3 -c "print('%.0f' % (($x1 - $x0) / $IDLE_WINDOW))")")
    done
    local rss1 l1
    rss1=$(rss_kb "${IDLE_SRV_PIDS[@]}")
    l1=$(loadavg)
    if [ -n "$prof" ]; then
        say "  profiling idle ($srv, $variant)"
        profile_start "$prof" "${IDLE_SRV_PIDS[@]}"
        sleep $((IDLE_WINDOW < 20 ? IDLE_WINDOW : 20))
        profile_finish "$prof"
    fi
    stop_pids "${gens[@]}"
    local cpulist wlist
    cpulist=$(IFS=,; echo "${cpus[*]}")
    wlist=$(IFS=,; echo "${wak[*]}")
    wak_med=$(python3 -c "import statistics; print(statistics.median([$wlist]))")
    python3 "$HELPER" idlemerge "$RESULTS" scenario=idle server="$srv" variant="$variant" \
        procs=${#IDLE_SRV_PIDS[@]} target_conns=$IDLE_CONNS rss0_kb=$rss0 rss1_kb=$rss1 \
        "cpu_pct_windows=[$cpulist]" "wakeups_windows=[$wlist]" wakeups_per_s="$wak_med" \
        connect_s="$connect_s" msgs_per_s="$msgs_rate" \
        load0="$l0" load1="$l1" gen_procs=$nproc "cmd=$cmd1" -- "${outs[@]}"
    say "  idle $srv ($variant): connect ${connect_s} s, RSS $rss0 -> $rss1 kB, CPU % per window: ${cpus[*]}, wake-ups/s: ${wak[*]}"
}

scenario_idle() {
    say "== idle: $IDLE_CONNS connections"
    local ports=()
    # project: IDLE_GATEWAYS gateways with SO_REUSEPORT, heartbeat on
    start_cluster idle $IDLE_GATEWAYS "$ECHO_MOD" $IDLE_PING_INTERVAL $IDLE_PING_LIMIT ping
    IDLE_SRV_PIDS=("${CL_GWS[@]}")
    idle_run project "heartbeat on, clients beat every ${IDLE_BEAT} s" $IDLE_BEAT idle $WS_PORT
    stop_cluster
    # the same with clients that send nothing during the windows: the gateways' own idle cost
    start_cluster idle $IDLE_GATEWAYS "$ECHO_MOD" $IDLE_PING_INTERVAL $IDLE_PING_LIMIT ping
    IDLE_SRV_PIDS=("${CL_GWS[@]}")
    local save_windows=$IDLE_WINDOWS
    IDLE_WINDOWS=1
    idle_run project "heartbeat on, clients silent during the window" 0 "" $WS_PORT
    IDLE_WINDOWS=$save_windows
    stop_cluster
    # references: as many processes as the project has gateways, one port each
    local n=$(((IDLE_CONNS + MAX_PER_PROC - 1) / MAX_PER_PROC))
    start_refs $n
    IDLE_WINDOWS=1
    IDLE_SRV_PIDS=("${ES_PIDS[@]}")
    idle_run echo-server "clients beat every ${IDLE_BEAT} s" $IDLE_BEAT "" $(seq $ES_PORT $((ES_PORT + n - 1)))
    IDLE_SRV_PIDS=("${NODE_PIDS[@]}")
    idle_run node "clients beat every ${IDLE_BEAT} s" $IDLE_BEAT "" $(seq $NODE_PORT $((NODE_PORT + n - 1)))
    IDLE_WINDOWS=$save_windows
    stop_refs
}

# hb_run VARIANT CONNS BEATING SPREAD LADDER(0|1) PROFILE_NAME
hb_run() {
    local variant=$1 conns=$2 beating=$3 spread=$4 ladder=$5 prof=$6
    local silent=$((conns - beating))
    local nproc=$(((conns + MAX_PER_PROC - 1) / MAX_PER_PROC))
    local i gens=() outs=() cmd1= l0 l1
    l0=$(loadavg)
    local s_left=$silent b_left=$beating
    for ((i = 0; i < nproc; i++)); do
        local s=$(((silent + nproc - 1) / nproc)) b=$(((beating + nproc - 1) / nproc))
        [ $s -gt $s_left ] && s=$s_left
        [ $b -gt $b_left ] && b=$b_left
        s_left=$((s_left - s))
        b_left=$((b_left - b))
        local out=$RES/raw/heartbeat.$conns.$spread.$i.json
        local cmd=("$BENCH" heartbeat -p $WS_PORT -c $s --beating $b --conn-offset $((i * MAX_PER_PROC))
            --sources $SOURCES --interval $HB_INTERVAL --limit $HB_LIMIT --spread "$spread"
            --timeout 180 --concurrency 256 -v --json)
        [ -z "$cmd1" ] && cmd1="${cmd[*]}  # x $nproc processes"
        start_bg "$out" "${cmd[@]}"
        gens+=("$LAST_PID")
        outs+=("$out")
    done
    # the first process to finish connecting starts its load first: deadlines begin
    # interval x limit after that
    local t=0
    until grep -q 'connected, .* failed' "${outs[@]}" 2>/dev/null; do
        sleep 0.1
        t=$((t + 1))
        [ $t -lt 3000 ] || break
    done
    local first_deadline=$(($(date +%s) + HB_INTERVAL * HB_LIMIT))
    # gateway CPU from 2 s before the first deadline to the end
    local wait_s=$((first_deadline - 2 - $(date +%s)))
    [ $wait_s -gt 0 ] && sleep $wait_s
    local c0 c1
    c0=$(cpu_ticks "${CL_GWS[@]}")
    [ -n "$prof" ] && profile_start "$prof" "${CL_GWS[@]}" "${CL_BWS[@]}"
    for i in "${gens[@]}"; do wait "$i" 2>/dev/null; done
    c1=$(cpu_ticks "${CL_GWS[@]}")
    if [ -n "$prof" ]; then
        local closed
        closed=$(cat "${outs[@]}" | python3 -c 'import sys, json; print(sum(json.loads(l).get("silent_closed", 0) for l in sys.stdin if l.startswith("{")))')
        profile_finish "$prof" "$closed" close
    fi
    stop_pids "${gens[@]}"
    l1=$(loadavg)
    local gw_cpu
    gw_cpu=$(ticks_to_s $((c1 - c0)))
    python3 "$HELPER" hbmerge "$RESULTS" scenario=heartbeat server=project variant="$variant" \
        conns=$conns silent=$silent beating=$beating procs=$nproc interval=$HB_INTERVAL limit=$HB_LIMIT \
        spread="$spread" ladder=$ladder gw_cpu_s="$gw_cpu" target=$([ "$ladder" = 0 ] && echo true || echo false) \
        load0="$l0" load1="$l1" "cmd=$cmd1" -- "${outs[@]}" || true
    local line
    line=$(tail -1 "$RESULTS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("closed %s, not closed %s, early %s, p50 %.1f ms, p99 %.1f ms, max %.1f ms, gateway %.1f us/close" % (r.get("silent_closed"), r.get("not_closed"), r.get("early"), (r.get("p50_med") or 0)/1e3, (r.get("p99_max") or 0)/1e3, (r.get("max") or 0)/1e3, r.get("gw_cpu_us_per_close") or 0))')
    say "  heartbeat $variant ($conns connections): $line"
}

scenario_heartbeat() {
    say "== heartbeat precision: $HB_CONNS connections, interval $HB_INTERVAL s x limit $HB_LIMIT"
    start_cluster heartbeat $IDLE_GATEWAYS "$ECHO_MOD" $HB_INTERVAL $HB_LIMIT ping
    local rep prof
    for rep in $(seq 1 "$REPS"); do
        prof=
        [ "$rep" = 1 ] && prof=heartbeat
        hb_run "storm #$rep: deadlines within 1 s" $HB_CONNS $HB_BEATING 1 0 "$prof"
    done
    for rep in $(seq 1 "$REPS"); do
        hb_run "paced #$rep: deadlines spread over $HB_SPREAD_PACED s" $HB_CONNS $HB_BEATING $HB_SPREAD_PACED 0 ""
    done
    local n
    for n in $HB_LADDER; do
        hb_run "storm, ladder" "$n" $((n / 100)) 1 1 ""
    done
    stop_cluster
}

# ---- main --------------------------------------------------------------------------------
T_START=$(date +%s)
write_helper
build
node_setup
check_ports
command -v perf >/dev/null && perf record -o /dev/null -e cpu-clock -- true >/dev/null 2>&1 && HAVE_PERF=1
[ $HAVE_PERF = 1 ] || say "perf not usable: no profiles"
[ "$(ulimit -n)" -ge 17000 ] || ulimit -n 20000 2>/dev/null || true

LOAD_START=$(loadavg)
NOISE=$(ps -eo pid,user,pcpu,etime,args --sort=-pcpu --no-headers | awk -v me=$$ '$3 > 5.0' | cut -c1-150 | head -8)
say "results in $RES; load average $LOAD_START; reps $REPS"

if wants echo || wants connect; then scenario_echo; fi
if wants broadcast; then scenario_broadcast; fi
if wants idle; then scenario_idle; fi
if wants heartbeat; then scenario_heartbeat; fi

LOAD_END=$(loadavg)
T_END=$(date +%s)

# ---- the document ----------------------------------------------------------------------
# The analysis written by hand after a run (bench/findings.json, or a findings.json in the
# results folder) is folded in by report.py; see its header.
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
PERF_HW=$(perf stat -e instructions true 2>&1 | grep -q 'not supported' && echo 'none (perf stat: instructions not supported); profiles use cpu-clock sampling' || echo 'available')
IDLE_DESC="The project: $IDLE_GATEWAYS gateways on one port with \`SO_REUSEPORT\` (\`reuse_port\`: a process may hold at most 20,000 open files here), 1 worker (\`examples/echo\`), gateway heartbeat \`ping_interval\` $IDLE_PING_INTERVAL s, \`ping_not_response_limit\` $IDLE_PING_LIMIT, \`heartbeat_message\` \"ping\" (taken at the gateway as a heartbeat: not forwarded, no reply), no \`ping_data\`, no \`ws_ping\`. $(((IDLE_CONNS + MAX_PER_PROC - 1) / MAX_PER_PROC)) \`gw-bench idle\` processes of up to $MAX_PER_PROC connections, source addresses $SOURCES; each client sends \"ping\" every $IDLE_BEAT s (spread evenly), as a browser client of such a config would. After every connection is established and ${IDLE_SETTLE} s of settling, CPU is measured over $IDLE_WINDOWS quiet window(s) of $IDLE_WINDOW s. A second project run holds the same connections with the clients sending nothing during the window: what the gateways cost with no traffic at all (timers only). The references run as many processes as the generator, one port each (they have no heartbeat; they echo the clients' pings)."
HB_DESC="The project: $IDLE_GATEWAYS gateways (\`SO_REUSEPORT\`), 1 worker, \`ping_interval\` $HB_INTERVAL s, \`ping_not_response_limit\` $HB_LIMIT (a silent client is closed $((HB_INTERVAL * HB_LIMIT)) s after its last message), \`heartbeat_message\` \"ping\". \`gw-bench heartbeat\` processes (up to $MAX_PER_PROC connections each) open the silent and the beating clients; when a process has connected, each of its silent clients sends one last message, spread over the first --spread seconds, and then nothing (no pong either); beating clients send \"ping\" every $HB_INTERVAL/2 s. *Storm*: the last messages of all silent clients within 1 s, so about as many deadlines fall in one second — the hardest case. *Paced*: spread over $HB_SPREAD_PACED s. Not applicable to the references (they have no heartbeat)."

export BUILD_COMMIT BUILD_DIRTY ROOT BUILD NODE_DIR LOAD_START LOAD_END T_START T_END REPS QUICK NOISE IDLE_DESC HB_DESC PERF_HW
export V_LIBUV=$(ver libuv1) V_NANOMSG=$(ver libnanomsg5) V_JANSSON=$(ver libjansson4)
python3 - "$RES/meta.json" <<'PYEOF'
import json, sys, subprocess, os
E = os.environ
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return '?'
hyp = sh("lscpu | sed -n 's/^Hypervisor vendor: *//p'")
meta = {
  'date': sh('date -u "+%Y-%m-%d %H:%M"'),
  'commit': E['BUILD_COMMIT'] + ' (' + sh('git -C "$ROOT" log -1 --format=%s ' + E['BUILD_COMMIT'] + ' | cut -c1-80') + ')',
  'dirty_note': '',
  'cpu': sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
  'virt': ('virtual machine, ' + hyp) if hyp else 'bare metal',
  'cores': sh('nproc'),
  'ram': sh("free -h | awk '/^Mem:/ {print $2}'"),
  'kernel': sh('uname -r'),
  'debian': sh('cat /etc/debian_version'),
  'cc': sh('cc --version | head -1'),
  'libuv': E['V_LIBUV'], 'nanomsg': E['V_NANOMSG'], 'jansson': E['V_JANSSON'],
  'node': sh('node --version'),
  'ws': json.load(open(os.path.join(E['NODE_DIR'], 'node_modules/ws/package.json')))['version'],
  'build': E['BUILD'],
  'nofile': sh('ulimit -n'),
  'ports': sh('cat /proc/sys/net/ipv4/ip_local_port_range').replace('\t', '-'),
  'perf_hw': E['PERF_HW'],
  'load_start': E['LOAD_START'], 'load_end': E['LOAD_END'],
  'elapsed': '%d min %d s' % divmod(int(E['T_END']) - int(E['T_START']), 60),
  'reps': int(E['REPS']), 'quick': E['QUICK'] == '1',
  'noise': E.get('NOISE', ''),
  'idle_desc': E['IDLE_DESC'],
  'hb_desc': E['HB_DESC'],
  'setup_cmds': ['meson setup $B <repo> -Dbuildtype=release -Dtests=false && ninja -C $B',
                 '(cd bench/node && npm ci)   # ws pinned in bench/node/package.json'],
}
dirty = E.get('BUILD_DIRTY', '0').strip()
if dirty and dirty != '0':
    meta['dirty_note'] = (' plus uncommitted changes in %s tracked files of common/ gateway/ businessworker/ '
                          'api/ register/ bench/ examples/ include/ at build time (others were editing the tree '
                          'during the run)' % dirty)
json.dump(meta, open(sys.argv[1], 'w'), indent=1)
PYEOF
python3 "$HELPER" doc "$RES" "$OUT" || die "writing the document failed"
say "wrote $OUT (raw results in $RES); $(( (T_END - T_START) / 60 )) min"
