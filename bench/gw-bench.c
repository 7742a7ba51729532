/* gw-bench: the load generator of GatewayWorker-C (issue #5). See usage() below.
 *
 * Options and the summary live here; the per-mode handlers in modes.c; the
 * wire-level client (WebSocket, text, frame) in client.c. One libuv loop per thread.
 */
#include "bench/bench.h"

#include "common/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void usage(FILE *f)
{
    fputs(
        "usage: gw-bench MODE [options]\n"
        "\n"
        "Load generator for GatewayWorker-C (and any WebSocket/text/frame echo server).\n"
        "\n"
        "modes:\n"
        "  echo       N connections x K messages in flight; msgs/s and round-trip latency;\n"
        "             every echo is checked against what was sent\n"
        "  broadcast  N receivers + 1 sender; the sender's messages (starting with --prefix)\n"
        "             are broadcast by the server (bench/libgw_bench_bcast.so, or\n"
        "             gw-echo-server) to every other client; deliveries/s, fan-out latency\n"
        "  idle       open and hold N connections (several source addresses to pass the\n"
        "             ephemeral port limit); optional heartbeat messages\n"
        "  connect    handshakes per second (connect, handshake, close), -c concurrent\n"
        "  heartbeat  N silent + M beating connections against a gateway with heartbeat on;\n"
        "             delay between each silent client's deadline (its last message, sent\n"
        "             once when the load starts, + interval x limit) and the server's close\n"
        "\n"
        "common options:\n"
        "  -P, --proto ws|text|frame   protocol (default ws)\n"
        "  -H, --host IP               server IPv4 address (default 127.0.0.1)\n"
        "  -p, --port PORT             server port; repeat to spread connections over\n"
        "                              several listeners (default 8282)\n"
        "      --path PATH             WebSocket request path (default /)\n"
        "  -c, --conns N               connections (connect mode: concurrent attempts)\n"
        "                              (default: echo 100, broadcast 1000, idle 1000,\n"
        "                              connect 50, heartbeat 100 silent)\n"
        "  -t, --threads N             loops, one thread each (default 1)\n"
        "      --concurrency N         connection attempts in flight while connecting\n"
        "                              (default 512)\n"
        "      --sources LIST          source addresses, e.g. 127.0.0.2-127.0.0.20,127.0.1.1;\n"
        "                              connection i uses source (offset + i) mod count\n"
        "      --conn-offset N         number of this process's first connection, so that\n"
        "                              several processes spread over sources and ports\n"
        "  -d, --duration SEC          measured seconds (default 10; heartbeat: see below)\n"
        "  -w, --warmup SEC            load before measuring (default 1; idle, heartbeat 0)\n"
        "  -n, --messages N            echo: messages in total; broadcast: broadcasts;\n"
        "                              connect: handshakes; the run ends when all are\n"
        "                              answered (no warm-up; --duration is then a cap)\n"
        "      --timeout SEC           connect phase, drain and stall limit (default 10)\n"
        "      --pid PID               a server process: its CPU time over the measured\n"
        "                              window and RSS are reported (repeatable)\n"
        "      --json                  print one JSON summary line on stdout (the text\n"
        "                              summary then goes to stderr)\n"
        "  -v, --verbose               progress on stderr\n"
        "  -h, --help                  this text\n"
        "\n"
        "echo / broadcast / connect:\n"
        "  -k, --inflight K            messages in flight per connection (default 1)\n"
        "  -s, --size BYTES            payload bytes (default 64, at least 32): 16 hex digits\n"
        "                              of send time, 8 of sequence, 8 of connection, then a\n"
        "                              pattern, so every echo can be checked\n"
        "      --rate R                broadcast: broadcasts per second (default 0 = as fast\n"
        "                              as deliveries keep up)\n"
        "      --window W              broadcast: broadcasts outstanding at most (default 8;\n"
        "                              with --rate 1024)\n"
        "      --prefix STR            broadcast: prefix the server broadcasts on (\"B:\")\n"
        "      --messages-per-conn M   connect: echo round trips before closing (default 0)\n"
        "\n"
        "idle / heartbeat:\n"
        "      --heartbeat-msg STR     message beating clients send (heartbeat default \"ping\")\n"
        "      --heartbeat-interval S  seconds between a client's heartbeat messages\n"
        "                              (idle: 0 = none; heartbeat: default interval / 2)\n"
        "      --beating M             heartbeat: connections that send heartbeats (100)\n"
        "      --interval S            heartbeat: the gateway's ping_interval (required)\n"
        "      --limit L               heartbeat: its ping_not_response_limit (required)\n"
        "                              (default duration: interval x limit + interval + 2)\n"
        "      --from-handshake        heartbeat: silent clients send nothing; their\n"
        "                              deadline counts from the handshake as the client saw\n"
        "                              it (late by up to one generator loop iteration while\n"
        "                              connecting, so closes may look early)\n"
        "      --spread SEC            heartbeat: silent clients send their last message\n"
        "                              over the first SEC seconds of the load, so that their\n"
        "                              deadlines are spread as much (default: 1, or a\n"
        "                              quarter of interval x limit if shorter)\n"
        "      --early-tolerance MS    heartbeat: a close more than MS before the deadline\n"
        "                              counts as early, a failure (default 5)\n"
        "\n"
        "Notes: WebSocket pings from the server are answered with pongs (except by silent\n"
        "heartbeat clients). For many connections give the server ports below the\n"
        "ephemeral range (net.ipv4.ip_local_port_range), use --sources, and run one\n"
        "process per ~19,000 connections where RLIMIT_NOFILE is 20,000 (--conn-offset).\n"
        "\n"
        "Exit status: 0 when every check passed, 1 when one failed (mismatched or lost\n"
        "message, failed connection, unexpected close, heartbeat close missing or early),\n"
        "2 for usage errors.\n",
        f);
}

/* ---- option parsing ---- */

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gw-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see gw-bench --help)\n");
    va_end(ap);
    exit(2);
}

static uint64_t parse_u64(const char *s, const char *name, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno || v < min || v > max) {
        fprintf(stderr, "gw-bench: %s must be an integer in %" PRIu64 "..%" PRIu64 " (got %s)\n",
                name, min, max, s);
        exit(2);
    }
    return v;
}

static double parse_double(const char *s, const char *name, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !(v >= min && v <= max)) {
        fprintf(stderr, "gw-bench: %s must be a number in %g..%g (got %s)\n", name, min, max, s);
        exit(2);
    }
    return v;
}

static uint32_t parse_ip(const char *s, const char *what)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        die_usage("%s is not an IPv4 address", what);
    return ntohl(a.s_addr);
}

/* "a.b.c.d-e.f.g.h,i.j.k.l" */
static void parse_sources(opts *o, const char *arg)
{
    char *copy = gw_strdup(arg);
    if (copy == NULL)
        exit(1);
    uint32_t list[MAX_SOURCES];
    int n = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(item, '-');
        uint32_t lo, hi;
        if (dash) {
            *dash = '\0';
            lo = parse_ip(item, item);
            hi = parse_ip(dash + 1, dash + 1);
        } else {
            lo = hi = parse_ip(item, item);
        }
        if (hi < lo || hi - lo >= MAX_SOURCES)
            die_usage("bad source range in --sources %s", arg);
        for (uint64_t ip = lo; ip <= hi; ip++) {
            if (n == MAX_SOURCES)
                die_usage("too many source addresses in --sources %s", arg);
            list[n++] = (uint32_t)ip;
        }
    }
    gw_free(copy);
    if (n == 0)
        die_usage("--sources %s lists no address", arg);
    o->src = gw_calloc((size_t)n, sizeof *o->src);
    if (o->src == NULL)
        exit(1);
    for (int i = 0; i < n; i++) {
        o->src[i].sin_family = AF_INET;
        o->src[i].sin_addr.s_addr = htonl(list[i]);
        o->src[i].sin_port = 0;
    }
    o->nsrc = n;
}

enum {
    OPT_PATH = 256,
    OPT_CONCURRENCY,
    OPT_SOURCES,
    OPT_OFFSET,
    OPT_TIMEOUT,
    OPT_PID,
    OPT_JSON,
    OPT_RATE,
    OPT_WINDOW,
    OPT_PREFIX,
    OPT_MPC,
    OPT_HBMSG,
    OPT_HBINT,
    OPT_BEATING,
    OPT_INTERVAL,
    OPT_LIMIT,
    OPT_TOLERANCE,
    OPT_FROM_HANDSHAKE,
    OPT_SPREAD,
};

static void parse_args(opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"proto", required_argument, NULL, 'P'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, OPT_PATH},
        {"conns", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
        {"sources", required_argument, NULL, OPT_SOURCES},
        {"conn-offset", required_argument, NULL, OPT_OFFSET},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"messages", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"pid", required_argument, NULL, OPT_PID},
        {"json", no_argument, NULL, OPT_JSON},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"inflight", required_argument, NULL, 'k'},
        {"size", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, OPT_RATE},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"prefix", required_argument, NULL, OPT_PREFIX},
        {"messages-per-conn", required_argument, NULL, OPT_MPC},
        {"heartbeat-msg", required_argument, NULL, OPT_HBMSG},
        {"heartbeat-interval", required_argument, NULL, OPT_HBINT},
        {"beating", required_argument, NULL, OPT_BEATING},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"early-tolerance", required_argument, NULL, OPT_TOLERANCE},
        {"from-handshake", no_argument, NULL, OPT_FROM_HANDSHAKE},
        {"spread", required_argument, NULL, OPT_SPREAD},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->proto = BP_WS;
    o->host = "127.0.0.1";
    o->path = "/";
    o->threads = 1;
    o->concurrency = 512;
    o->duration = -1;
    o->warmup = -1;
    o->timeout = 10;
    o->inflight = 1;
    o->size = 64;
    o->window = 8;
    o->prefix = "B:";
    o->hb_interval = -1;
    o->beating = 100;
    o->early_tolerance = 0.005;
    uint16_t ports[MAX_PORTS];
    int nports = 0;
    int conns_set = 0, window_set = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "P:H:p:c:t:d:w:n:vhk:s:", lo, NULL)) != -1) {
        switch (ch) {
        case 'P':
            if (strcmp(optarg, "ws") == 0 || strcmp(optarg, "websocket") == 0)
                o->proto = BP_WS;
            else if (strcmp(optarg, "text") == 0)
                o->proto = BP_TEXT;
            else if (strcmp(optarg, "frame") == 0)
                o->proto = BP_FRAME;
            else
                die_usage("--proto must be ws, text or frame (got %s)", optarg);
            break;
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            if (nports == MAX_PORTS)
                die_usage("too many --port (at most 64)");
            ports[nports++] = (uint16_t)parse_u64(optarg, "--port", 1, 65535);
            break;
        case OPT_PATH:
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n"))
                die_usage("--path must start with / and hold no space (got %s)", optarg);
            o->path = optarg;
            break;
        case 'c':
            o->conns = (uint32_t)parse_u64(optarg, "--conns", 1, 10000000);
            conns_set = 1;
            break;
        case 't':
            o->threads = (uint32_t)parse_u64(optarg, "--threads", 1, 64);
            break;
        case OPT_CONCURRENCY:
            o->concurrency = (uint32_t)parse_u64(optarg, "--concurrency", 1, 1000000);
            break;
        case OPT_SOURCES:
            gw_free(o->src);
            parse_sources(o, optarg);
            break;
        case OPT_OFFSET:
            o->offset = (uint32_t)parse_u64(optarg, "--conn-offset", 0, 1000000000);
            break;
        case 'd':
            o->duration = parse_double(optarg, "--duration", 0.01, 1e7);
            break;
        case 'w':
            o->warmup = parse_double(optarg, "--warmup", 0, 1e6);
            break;
        case 'n':
            o->messages = parse_u64(optarg, "--messages", 1, UINT32_MAX);
            break;
        case OPT_TIMEOUT:
            o->timeout = parse_double(optarg, "--timeout", 0.1, 1e6);
            break;
        case OPT_PID:
            if (o->npids == MAX_PIDS)
                die_usage("too many --pid (at most 16)");
            o->pids[o->npids++] = (pid_t)parse_u64(optarg, "--pid", 1, INT32_MAX);
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'k':
            o->inflight = (uint32_t)parse_u64(optarg, "--inflight", 1, 1000000);
            break;
        case 's':
            o->size = (uint32_t)parse_u64(optarg, "--size", PAYLOAD_HEAD, 64u << 20);
            break;
        case OPT_RATE:
            o->rate = parse_double(optarg, "--rate", 0, 1e9);
            break;
        case OPT_WINDOW:
            o->window = (uint32_t)parse_u64(optarg, "--window", 1, 1000000);
            window_set = 1;
            break;
        case OPT_PREFIX:
            if (strchr(optarg, '\n'))
                die_usage("--prefix must not hold a line end");
            o->prefix = optarg;
            break;
        case OPT_MPC:
            o->msgs_per_conn = (uint32_t)parse_u64(optarg, "--messages-per-conn", 0, 1000000);
            break;
        case OPT_HBMSG:
            if (strchr(optarg, '\n'))
                die_usage("--heartbeat-msg must not hold a line end");
            o->hb_msg = optarg;
            break;
        case OPT_HBINT:
            o->hb_interval = parse_double(optarg, "--heartbeat-interval", 0, 86400);
            break;
        case OPT_BEATING:
            o->beating = (uint32_t)parse_u64(optarg, "--beating", 0, 10000000);
            break;
        case OPT_INTERVAL:
            o->interval = parse_double(optarg, "--interval", 0.001, 86400);
            break;
        case OPT_LIMIT:
            o->limit = (uint32_t)parse_u64(optarg, "--limit", 1, 1000);
            break;
        case OPT_FROM_HANDSHAKE:
            o->from_handshake = 1;
            break;
        case OPT_SPREAD:
            o->spread = parse_double(optarg, "--spread", 0.001, 86400);
            break;
        case OPT_TOLERANCE:
            o->early_tolerance = parse_double(optarg, "--early-tolerance", 0, 1e6) / 1000.0;
            break;
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind >= argc)
        die_usage("a MODE is required: echo, broadcast, idle, connect or heartbeat");
    const char *m = argv[optind];
    if (strcmp(m, "echo") == 0)
        o->mode = MODE_ECHO;
    else if (strcmp(m, "broadcast") == 0)
        o->mode = MODE_BROADCAST;
    else if (strcmp(m, "idle") == 0)
        o->mode = MODE_IDLE;
    else if (strcmp(m, "connect") == 0)
        o->mode = MODE_CONNECT;
    else if (strcmp(m, "heartbeat") == 0)
        o->mode = MODE_HEARTBEAT;
    else
        die_usage("unknown mode %s", m);
    if (optind + 1 != argc)
        die_usage("unexpected argument %s", argv[optind + 1]);

    /* Per-mode defaults and checks. */
    if (!conns_set) {
        static const uint32_t defaults[] = {100, 1000, 1000, 50, 100};
        o->conns = defaults[o->mode];
    }
    int hold = o->mode == MODE_IDLE || o->mode == MODE_HEARTBEAT;
    if (o->warmup < 0)
        o->warmup = hold ? 0 : 1;
    if (o->messages)
        o->warmup = 0;
    if (o->mode == MODE_HEARTBEAT) {
        if (o->interval <= 0 || o->limit == 0)
            die_usage("heartbeat mode needs --interval and --limit (the gateway's "
                      "ping_interval and ping_not_response_limit)");
        if (o->hb_msg == NULL)
            o->hb_msg = "ping";
        if (o->hb_interval < 0)
            o->hb_interval = o->interval / 2;
        if (o->beating && o->hb_interval <= 0)
            die_usage("--heartbeat-interval must be > 0 for beating clients");
        if (o->hb_interval >= o->interval * o->limit)
            fprintf(stderr, "gw-bench: warning: --heartbeat-interval >= interval x limit: "
                            "beating clients will be closed\n");
        if (o->spread <= 0) {
            o->spread = o->interval * o->limit / 4;
            if (o->spread > 1.0)
                o->spread = 1.0;
        }
        if (o->duration < 0)
            o->duration =
                o->interval * o->limit + o->interval + 2 + (o->spread > 1 ? o->spread : 0);
    }
    if (o->mode == MODE_IDLE && o->hb_interval > 0 && o->hb_msg == NULL)
        die_usage("--heartbeat-interval needs --heartbeat-msg");
    if (o->hb_interval < 0)
        o->hb_interval = 0;
    if (o->duration < 0)
        o->duration = o->messages ? 60 : 10;
    if (o->mode != MODE_BROADCAST)
        o->prefix = "";
    if (o->rate > 0 && !window_set)
        o->window = 1024; /* paced: the rate decides, the window is only a bound */
    if (nports == 0)
        ports[nports++] = 8282;
    uint32_t host = parse_ip(o->host, o->host);
    for (int i = 0; i < nports; i++) {
        o->dst[i].sin_family = AF_INET;
        o->dst[i].sin_addr.s_addr = htonl(host);
        o->dst[i].sin_port = htons(ports[i]);
    }
    o->ndst = nports;
}

/* ---- threads and phases ---- */

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

int bench_start_conn(bthread *t, bench_conn *c, uint64_t id)
{
    const opts *o = &t->r->o;
    c->id = (uint32_t)id;
    c->t0 = now_ns();
    c->t1 = 0;
    c->tx = c->rx = 0;
    const struct sockaddr_in *dst = &o->dst[id % (uint64_t)o->ndst];
    const struct sockaddr_in *src = o->nsrc ? &o->src[id % (uint64_t)o->nsrc] : NULL;
    if (c->role == R_SILENT)
        c->flags |= BCF_SILENT;
    int rc = bench_conn_start(c, &t->bl, dst, src);
    if (rc < 0)
        return rc;
    t->live++;
    return 0;
}

static void enter_barrier(bthread *t)
{
    if (t->phase != P_CONNECT)
        return;
    t->phase = P_BARRIER;
    if (t->r->o.mode == MODE_BROADCAST) {
        uint32_t open = 0;
        for (uint32_t i = 0; i < t->nconns; i++)
            if (t->conns[i].role == R_RECEIVER && t->conns[i].state == BC_OPEN)
                open++;
        atomic_fetch_add(&t->r->receivers, open);
    }
    if (t->r->o.verbose)
        fprintf(stderr, "gw-bench[%d]: %" PRIu64 " connected, %" PRIu64 " failed\n", t->index,
                t->st.conn_ok, t->st.conn_fail);
    atomic_fetch_add(&t->r->ready, 1);
}

/* Starts connection attempts up to this thread's share of --concurrency. */
static void connect_more(bthread *t)
{
    const opts *o = &t->r->o;
    uint32_t conc = o->concurrency / o->threads;
    if (conc == 0)
        conc = 1;
    while (t->phase == P_CONNECT && t->connecting < conc && t->next_start < t->nconns) {
        bench_conn *c = &t->conns[t->next_start++];
        uint64_t id = (uint64_t)o->offset + t->first + (uint64_t)(c - t->conns);
        if (c->role == R_SENDER)
            id = (uint64_t)o->offset + o->conns; /* after every receiver */
        int rc = bench_start_conn(t, c, id);
        if (rc < 0) {
            t->st.conn_fail++;
            t->resolved++;
            if (o->verbose)
                fprintf(stderr, "gw-bench[%d]: connection %" PRIu64 ": %s\n", t->index, id,
                        uv_strerror(rc));
            continue;
        }
        t->connecting++;
    }
    if (t->resolved == t->nconns)
        enter_barrier(t);
}

void bench_connect_resolved(bthread *t)
{
    if (t->phase != P_CONNECT)
        return;
    t->connecting--;
    t->resolved++;
    connect_more(t);
}

static void account_window(bthread *t, int end)
{
    run *r = t->r;
    if (t->index != 0)
        return;
    pstat *p = end ? r->p_m1 : r->p_m0;
    for (int i = 0; i < r->o.npids; i++)
        pstat_read(r->o.pids[i], &p[i]);
    if (end)
        r->self_m1 = pstat_self_cpu();
    else
        r->self_m0 = pstat_self_cpu();
}

static void begin_measure(bthread *t)
{
    const mode_ops *m = mode_get(t->r->o.mode);
    t->phase = P_MEASURE;
    t->measuring = 1;
    account_window(t, 0);
    t->t_meas_start = now_ns();
    t->t_phase_deadline = t->t_meas_start + (uint64_t)(t->r->o.duration * 1e9);
    m->measure_start(t);
}

static void start_load(bthread *t)
{
    const mode_ops *m = mode_get(t->r->o.mode);
    t->t_load_start = now_ns();
    if (t->r->o.warmup > 0) {
        t->phase = P_WARMUP;
        t->t_phase_deadline = t->t_load_start + (uint64_t)(t->r->o.warmup * 1e9);
    } else {
        begin_measure(t);
    }
    m->load_start(t);
}

static void end_measure(bthread *t)
{
    const mode_ops *m = mode_get(t->r->o.mode);
    t->t_meas_end = now_ns();
    /* A --messages run ends with its last answer, not at the next tick. */
    if (t->r->o.messages && t->r->o.mode != MODE_CONNECT && t->t_last_rx > t->t_meas_start)
        t->t_meas_end = t->t_last_rx;
    t->measuring = 0;
    account_window(t, 1);
    m->measure_end(t);
    t->phase = P_DRAIN;
    t->t_phase_deadline = t->t_meas_end + (uint64_t)(t->r->o.timeout * 1e9);
}

static void start_close(bthread *t)
{
    t->phase = P_CLOSE;
    t->t_phase_deadline = now_ns() + 2000000000ULL;
    if (t->pace_on) {
        uv_timer_stop(&t->pace);
    }
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->state == BC_OPEN)
            bench_conn_close(c);
        else if (c->state == BC_CONNECTING || c->state == BC_HANDSHAKE)
            bench_conn_abort(c);
    }
}

static void finish(bthread *t)
{
    t->phase = P_DONE;
    uv_close((uv_handle_t *)&t->tick, NULL);
    uv_close((uv_handle_t *)&t->pace, NULL);
    if (t->wake_on)
        uv_close((uv_handle_t *)&t->wake, NULL);
}

static void tick_cb(uv_timer_t *tm)
{
    bthread *t = container_of(tm, bthread, tick);
    run *r = t->r;
    const mode_ops *m = mode_get(r->o.mode);
    uint64_t now = now_ns();
    if (interrupted && t->phase < P_DRAIN && t->phase >= P_WARMUP) {
        if (t->phase == P_WARMUP)
            begin_measure(t);
        end_measure(t);
    }
    switch (t->phase) {
    case P_CONNECT:
        if (now >= t->t_phase_deadline || interrupted) {
            /* Give up on what has not connected yet. */
            t->next_start = t->nconns;
            for (uint32_t i = 0; i < t->nconns; i++) {
                bench_conn *c = &t->conns[i];
                if (c->state == BC_CONNECTING || c->state == BC_HANDSHAKE)
                    bench_conn_abort(c);
            }
            t->resolved = t->nconns - t->connecting;
            if (t->connecting == 0)
                enter_barrier(t);
        }
        break;
    case P_BARRIER:
        if (atomic_load(&r->ready) == r->o.threads)
            start_load(t);
        break;
    case P_WARMUP:
        if (now >= t->t_phase_deadline)
            begin_measure(t);
        break;
    case P_MEASURE:
        if (now >= t->t_phase_deadline || (m->finished && r->o.messages && m->finished(t)) ||
            (t->live == 0 && r->o.mode != MODE_CONNECT))
            end_measure(t);
        break;
    case P_DRAIN:
        if (m->drained(t) || now >= t->t_phase_deadline) {
            m->drain_end(t);
            start_close(t);
        }
        break;
    case P_CLOSE:
        if (t->live == 0) {
            finish(t);
        } else if (now >= t->t_phase_deadline) {
            for (uint32_t i = 0; i < t->nconns; i++)
                if (t->conns[i].state != BC_FREE)
                    bench_conn_abort(&t->conns[i]);
            t->t_phase_deadline = UINT64_MAX;
        }
        break;
    default:
        break;
    }
}

static void thread_main(void *arg)
{
    bthread *t = arg;
    run *r = t->r;
    const mode_ops *m = mode_get(r->o.mode);
    uint64_t seed = ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() << 8) ^ (uint64_t)t->index;
    int rc = bench_loop_init(&t->bl, r->o.proto, &m->h, t, r->o.path, seed * 0x9E3779B97F4A7C15ULL);
    if (rc < 0) {
        fprintf(stderr, "gw-bench: loop: %s\n", uv_strerror(rc));
        t->st.conn_fail += t->nconns;
        atomic_fetch_add(&r->ready, 1);
        return;
    }
    if (r->o.mode == MODE_IDLE || r->o.mode == MODE_HEARTBEAT || r->o.mode == MODE_CONNECT)
        t->bl.keep_out = 0;
    uv_timer_init(&t->bl.loop, &t->tick);
    uv_timer_init(&t->bl.loop, &t->pace);
    if (m->thread_start)
        m->thread_start(t);
    t->phase = P_CONNECT;
    t->t_phase_deadline = now_ns() + (uint64_t)(r->o.timeout * 1e9);
    uv_timer_start(&t->tick, tick_cb, TICK_MS, TICK_MS);
    if (r->o.mode == MODE_CONNECT)
        enter_barrier(t);
    else
        connect_more(t);
    uv_run(&t->bl.loop, UV_RUN_DEFAULT);
    t->st.pings_rx = t->bl.pings_rx;
    t->st.pongs_tx = t->bl.pongs_tx;
    t->st.bytes_in = t->bl.bytes_in;
    t->st.bytes_out = t->bl.bytes_out;
    t->st.reads = t->bl.reads;
    t->st.writes = t->bl.writes_try + t->bl.writes_async;
    bench_loop_deinit(&t->bl);
}

/* ---- summary ---- */

typedef struct summary {
    stats st;
    hist lat, conn, aux;
    double window; /* seconds, thread 0 */
    double rate_rx, rate_tx, rate_hs, rate_bc;
} summary;

static void merge(run *r, summary *s)
{
    memset(s, 0, sizeof *s);
    s->st.early_min_ns = INT64_MAX;
    for (uint32_t i = 0; i < r->o.threads; i++) {
        bthread *t = &r->threads[i];
        const stats *a = &t->st;
        stats *d = &s->st;
        d->conn_ok += a->conn_ok;
        d->conn_fail += a->conn_fail;
        d->hs_fail += a->hs_fail;
        d->closed_early += a->closed_early;
        d->msgs_tx += a->msgs_tx;
        d->msgs_rx += a->msgs_rx;
        d->msgs_tx_all += a->msgs_tx_all;
        d->msgs_rx_all += a->msgs_rx_all;
        d->mismatches += a->mismatches;
        d->lost += a->lost;
        d->bc_sent += a->bc_sent;
        d->bc_done += a->bc_done;
        d->stalls += a->stalls;
        d->hb_sent += a->hb_sent;
        d->server_msgs += a->server_msgs;
        d->handshakes += a->handshakes;
        d->pings_rx += a->pings_rx;
        d->pongs_tx += a->pongs_tx;
        d->bytes_in += a->bytes_in;
        d->bytes_out += a->bytes_out;
        d->reads += a->reads;
        d->writes += a->writes;
        d->silent_closed += a->silent_closed;
        d->silent_early += a->silent_early;
        d->not_closed += a->not_closed;
        d->beating_closed += a->beating_closed;
        d->silent_msgs += a->silent_msgs;
        for (int k = 0; k < 3; k++)
            d->closes_by_code[k] += a->closes_by_code[k];
        if (a->early_min_ns < d->early_min_ns)
            d->early_min_ns = a->early_min_ns;
        hist_merge(&s->lat, &t->lat);
        hist_merge(&s->conn, &t->conn);
        hist_merge(&s->aux, &t->aux);
        double w =
            t->t_meas_end > t->t_meas_start ? (double)(t->t_meas_end - t->t_meas_start) / 1e9 : 0;
        if (i == 0)
            s->window = w;
        if (w > 0) {
            s->rate_rx += (double)a->msgs_rx / w;
            s->rate_tx += (double)a->msgs_tx / w;
            s->rate_hs += (double)a->handshakes / w;
            if (i == 0)
                s->rate_bc = (double)a->msgs_tx / w;
        }
    }
    if (s->st.early_min_ns == INT64_MAX)
        s->st.early_min_ns = 0;
}

static int verdict(const run *r, const summary *s)
{
    const stats *st = &s->st;
    int ok = st->conn_fail == 0 && st->mismatches == 0 && st->lost == 0;
    switch (r->o.mode) {
    case MODE_ECHO:
        ok = ok && st->closed_early == 0 && st->msgs_rx_all > 0;
        if (r->o.messages)
            ok = ok && st->msgs_rx_all == r->o.messages;
        break;
    case MODE_BROADCAST:
        ok = ok && st->closed_early == 0 && st->stalls == 0 && st->server_msgs == 0 &&
             st->bc_done > 0;
        if (r->o.messages)
            ok = ok && st->bc_sent == r->o.messages && st->bc_done == r->o.messages;
        break;
    case MODE_IDLE:
        ok = ok && st->closed_early == 0;
        break;
    case MODE_CONNECT:
        ok = ok && st->closed_early == 0;
        if (r->o.messages)
            ok = ok && st->conn_ok == r->o.messages;
        break;
    case MODE_HEARTBEAT:
        ok = ok && st->beating_closed == 0 && st->not_closed == 0 && st->silent_early == 0;
        break;
    }
    return ok;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void fmt_hist(gw_buf *b, const char *name, const hist *h, int json)
{
    if (json) {
        gw_buf_printf(b,
                      ",\"%s\":{\"count\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
                      "\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"min\":%.1f}",
                      name, h->count, us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
                      us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)), us(h->max),
                      hist_mean(h) / 1000.0, us(h->min));
    } else {
        gw_buf_printf(b,
                      "  %-22s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f"
                      "  (%" PRIu64 " samples)\n",
                      name, us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
                      us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)), us(h->max),
                      hist_mean(h) / 1000.0, h->count);
    }
}

static void report(run *r, const summary *s, int ok)
{
    const opts *o = &r->o;
    const stats *st = &s->st;
    static const char *pn[] = {"ws", "text", "frame"};
    double client_cpu = r->self_m1 - r->self_m0;
    double server_cpu = 0;
    int have_server = 0;
    for (int i = 0; i < o->npids; i++)
        if (r->p_m0[i].ok && r->p_m1[i].ok) {
            server_cpu += r->p_m1[i].utime + r->p_m1[i].stime - r->p_m0[i].utime - r->p_m0[i].stime;
            have_server = 1;
        }
    /* What the server's CPU is charged to. */
    uint64_t units = 0;
    const char *unit = "msg";
    switch (o->mode) {
    case MODE_ECHO:
        units = st->msgs_rx;
        break;
    case MODE_BROADCAST:
        units = st->msgs_rx;
        unit = "delivery";
        break;
    case MODE_CONNECT:
        units = st->handshakes;
        unit = "handshake";
        break;
    default:
        break;
    }

    gw_buf t = {0};
    gw_buf_printf(&t, "gw-bench %s: proto %s, %u connection%s, %u thread%s, window %.2f s\n",
                  mode_get(o->mode)->name, pn[o->proto], o->conns, o->conns == 1 ? "" : "s",
                  o->threads, o->threads == 1 ? "" : "s", s->window);
    gw_buf_printf(&t,
                  "  connections: %" PRIu64 " opened, %" PRIu64 " failed (%" PRIu64
                  " at handshake), %" PRIu64 " closed early\n",
                  st->conn_ok, st->conn_fail, st->hs_fail, st->closed_early);
    fmt_hist(&t, "connect time (us):", &s->conn, 0);
    switch (o->mode) {
    case MODE_ECHO:
        gw_buf_printf(&t,
                      "  echo: %u in flight x %u bytes: %.0f msg/s (%" PRIu64
                      " in the window; %" PRIu64 " sent, %" PRIu64 " received in all)\n",
                      o->inflight, o->size, s->rate_rx, st->msgs_rx, st->msgs_tx_all,
                      st->msgs_rx_all);
        fmt_hist(&t, "round trip (us):", &s->lat, 0);
        break;
    case MODE_BROADCAST:
        gw_buf_printf(&t,
                      "  broadcast: %.0f broadcasts/s, %.0f deliveries/s (%" PRIu64
                      " broadcasts sent, %" PRIu64 " complete, %" PRIu64 " deliveries)\n",
                      s->rate_bc, s->rate_rx, st->bc_sent, st->bc_done, st->msgs_rx_all);
        fmt_hist(&t, "fan-out (us):", &s->lat, 0);
        fmt_hist(&t, "last receiver (us):", &s->aux, 0);
        if (st->server_msgs)
            gw_buf_printf(&t,
                          "  the sender got %" PRIu64 " messages back: does the server "
                          "broadcast messages starting with \"%s\" (bench/libgw_bench_bcast.so)?\n",
                          st->server_msgs, o->prefix);
        break;
    case MODE_IDLE:
        gw_buf_printf(&t,
                      "  idle: held %" PRIu64 " for %.1f s; %" PRIu64 " heartbeats sent, %" PRIu64
                      " server messages, %" PRIu64 " WebSocket pings (%" PRIu64 " answered)\n",
                      st->conn_ok - st->closed_early, s->window, st->hb_sent, st->server_msgs,
                      st->pings_rx, st->pongs_tx);
        break;
    case MODE_CONNECT:
        gw_buf_printf(&t, "  connect: %.0f handshakes/s (%" PRIu64 " in the window)\n", s->rate_hs,
                      st->handshakes);
        fmt_hist(&t, "handshake (us):", &s->lat, 0);
        break;
    case MODE_HEARTBEAT:
        gw_buf_printf(&t,
                      "  heartbeat: interval %.3g s x limit %u, deadline from the %s; silent "
                      "closed %" PRIu64 " (close frame %" PRIu64 ", EOF %" PRIu64 ", error %" PRIu64
                      "), not closed %" PRIu64 ", early %" PRIu64
                      " (min delay %.1f ms); beating closed %" PRIu64 "\n",
                      o->interval, o->limit, o->from_handshake ? "handshake" : "last message",
                      st->silent_closed, st->closes_by_code[0], st->closes_by_code[1],
                      st->closes_by_code[2], st->not_closed, st->silent_early,
                      (double)st->early_min_ns / 1e6, st->beating_closed);
        fmt_hist(&t, "close delay (us):", &s->lat, 0);
        break;
    }
    gw_buf_printf(&t, "  checks: %" PRIu64 " mismatched, %" PRIu64 " lost\n", st->mismatches,
                  st->lost);
    gw_buf_printf(&t,
                  "  generator i/o: %" PRIu64 " reads, %" PRIu64 " writes, %" PRIu64
                  " bytes in, %" PRIu64 " bytes out (whole run)\n",
                  st->reads, st->writes, st->bytes_in, st->bytes_out);
    gw_buf_printf(&t, "  cpu: generator %.2f s (%.0f%% of a core)", client_cpu,
                  s->window > 0 ? client_cpu / s->window * 100 : 0);
    if (have_server) {
        gw_buf_printf(&t, ", server %.2f s (%.0f%% of a core)", server_cpu,
                      s->window > 0 ? server_cpu / s->window * 100 : 0);
        if (units)
            gw_buf_printf(&t, " = %.3f us/%s", server_cpu * 1e6 / (double)units, unit);
    }
    gw_buf_printf(&t, "\n");
    for (int i = 0; i < o->npids; i++)
        gw_buf_printf(&t, "  pid %d: cpu %.2f s in the window, rss %ld kB (at start %ld kB)\n",
                      (int)o->pids[i],
                      r->p_m1[i].utime + r->p_m1[i].stime - r->p_m0[i].utime - r->p_m0[i].stime,
                      r->p_m1[i].rss_kb, r->p_start[i].rss_kb);
    gw_buf_printf(&t, "  result: %s\n", ok ? "OK" : "FAILED");
    fwrite(t.data, 1, t.len, o->json ? stderr : stdout);
    gw_buf_deinit(&t);
    if (!o->json)
        return;

    gw_buf j = {0};
    gw_buf_printf(&j,
                  "{\"mode\":\"%s\",\"proto\":\"%s\",\"conns\":%u,\"threads\":%u,"
                  "\"conn_offset\":%u,\"window_s\":%.4f,\"ok\":%s,"
                  "\"conn_ok\":%" PRIu64 ",\"conn_fail\":%" PRIu64 ",\"hs_fail\":%" PRIu64
                  ",\"closed_early\":%" PRIu64 ",\"mismatches\":%" PRIu64 ",\"lost\":%" PRIu64,
                  mode_get(o->mode)->name, pn[o->proto], o->conns, o->threads, o->offset, s->window,
                  ok ? "true" : "false", st->conn_ok, st->conn_fail, st->hs_fail, st->closed_early,
                  st->mismatches, st->lost);
    fmt_hist(&j, "connect_us", &s->conn, 1);
    switch (o->mode) {
    case MODE_ECHO:
        gw_buf_printf(&j,
                      ",\"inflight\":%u,\"size\":%u,\"msgs\":%" PRIu64 ",\"msgs_per_s\":%.1f,"
                      "\"sent_total\":%" PRIu64 ",\"received_total\":%" PRIu64,
                      o->inflight, o->size, st->msgs_rx, s->rate_rx, st->msgs_tx_all,
                      st->msgs_rx_all);
        fmt_hist(&j, "rtt_us", &s->lat, 1);
        break;
    case MODE_BROADCAST:
        gw_buf_printf(&j,
                      ",\"size\":%u,\"rate\":%g,\"window\":%u,\"broadcasts\":%" PRIu64
                      ",\"broadcasts_complete\":%" PRIu64 ",\"broadcasts_per_s\":%.1f,"
                      "\"deliveries\":%" PRIu64 ",\"deliveries_per_s\":%.1f,"
                      "\"deliveries_total\":%" PRIu64 ",\"stalls\":%" PRIu64,
                      o->size, o->rate, o->window, st->bc_sent, st->bc_done, s->rate_bc,
                      st->msgs_rx, s->rate_rx, st->msgs_rx_all, st->stalls);
        fmt_hist(&j, "fanout_us", &s->lat, 1);
        fmt_hist(&j, "last_receiver_us", &s->aux, 1);
        break;
    case MODE_IDLE:
        gw_buf_printf(
            &j, ",\"held\":%" PRIu64 ",\"heartbeats_sent\":%" PRIu64 ",\"server_msgs\":%" PRIu64,
            st->conn_ok - st->closed_early, st->hb_sent, st->server_msgs);
        break;
    case MODE_CONNECT:
        gw_buf_printf(&j, ",\"handshakes\":%" PRIu64 ",\"handshakes_per_s\":%.1f", st->handshakes,
                      s->rate_hs);
        fmt_hist(&j, "handshake_us", &s->lat, 1);
        break;
    case MODE_HEARTBEAT:
        gw_buf_printf(
            &j,
            ",\"interval\":%g,\"limit\":%u,\"spread\":%g,\"beating\":%u,\"reference\":\"%s\""
            ",\"silent_last_msgs\":%" PRIu64 ",\"silent_closed\":%" PRIu64
            ",\"close_frame\":%" PRIu64 ",\"close_eof\":%" PRIu64 ",\"close_error\":%" PRIu64
            ",\"not_closed\":%" PRIu64 ",\"early\":%" PRIu64
            ",\"min_delay_ms\":%.3f,\"beating_closed\":%" PRIu64 ",\"heartbeats_sent\":%" PRIu64,
            o->interval, o->limit, o->spread, o->beating,
            o->from_handshake ? "handshake" : "last_message", st->silent_msgs, st->silent_closed,
            st->closes_by_code[0], st->closes_by_code[1], st->closes_by_code[2], st->not_closed,
            st->silent_early, (double)st->early_min_ns / 1e6, st->beating_closed, st->hb_sent);
        fmt_hist(&j, "close_delay_us", &s->lat, 1);
        break;
    }
    gw_buf_printf(&j,
                  ",\"pings_rx\":%" PRIu64 ",\"pongs_tx\":%" PRIu64 ",\"reads\":%" PRIu64
                  ",\"writes\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64,
                  st->pings_rx, st->pongs_tx, st->reads, st->writes, st->bytes_in, st->bytes_out);
    gw_buf_printf(&j, ",\"client_cpu_s\":%.3f", client_cpu);
    if (have_server) {
        gw_buf_printf(&j, ",\"server_cpu_s\":%.3f", server_cpu);
        if (units)
            gw_buf_printf(&j, ",\"server_cpu_us_per_unit\":%.4f,\"unit\":\"%s\"",
                          server_cpu * 1e6 / (double)units, unit);
    }
    gw_buf_printf(&j, ",\"pids\":[");
    for (int i = 0; i < o->npids; i++)
        gw_buf_printf(&j, "%s{\"pid\":%d,\"cpu_s\":%.3f,\"rss_kb\":%ld,\"rss_start_kb\":%ld}",
                      i ? "," : "", (int)o->pids[i],
                      r->p_m1[i].utime + r->p_m1[i].stime - r->p_m0[i].utime - r->p_m0[i].stime,
                      r->p_m1[i].rss_kb, r->p_start[i].rss_kb);
    gw_buf_printf(&j, "]}\n");
    fwrite(j.data, 1, j.len, stdout);
    fflush(stdout);
    gw_buf_deinit(&j);
}

/* ---- main ---- */

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Splits `total` slots over the threads and assigns roles. */
static int setup_threads(run *r)
{
    opts *o = &r->o;
    r->threads = gw_calloc(o->threads, sizeof *r->threads);
    if (r->threads == NULL)
        return -ENOMEM;
    uint64_t total;
    switch (o->mode) {
    case MODE_HEARTBEAT:
        total = (uint64_t)o->conns + o->beating;
        break;
    case MODE_CONNECT:
        total = o->conns; /* slots: concurrent attempts */
        break;
    default:
        total = o->conns;
        break;
    }
    uint64_t first = 0;
    for (uint32_t i = 0; i < o->threads; i++) {
        bthread *t = &r->threads[i];
        t->r = r;
        t->index = (int)i;
        uint64_t n = total / o->threads + (i < total % o->threads ? 1 : 0);
        uint64_t slots = n + (o->mode == MODE_BROADCAST && i == 0 ? 1 : 0);
        t->first = (uint32_t)first;
        t->nconns = (uint32_t)slots;
        t->conns = gw_calloc(slots ? slots : 1, sizeof *t->conns);
        if (t->conns == NULL)
            return -ENOMEM;
        t->st.early_min_ns = INT64_MAX; /* smallest close delay seen (heartbeat) */
        if (o->mode == MODE_CONNECT && o->messages)
            t->quota = o->messages / o->threads + (i < o->messages % o->threads ? 1 : 0);
        for (uint64_t k = 0; k < n; k++) {
            bench_conn *c = &t->conns[k];
            uint64_t g = first + k;
            switch (o->mode) {
            case MODE_BROADCAST:
                c->role = R_RECEIVER;
                break;
            case MODE_HEARTBEAT:
                c->role = g < o->conns ? R_SILENT : R_BEATING;
                break;
            case MODE_ECHO:
                c->aux = UINT32_MAX;
                if (o->messages)
                    c->aux = (uint32_t)(o->messages / o->conns + (g < o->messages % o->conns));
                break;
            default:
                break;
            }
        }
        if (o->mode == MODE_BROADCAST && i == 0) {
            /* The sender: the last slot of thread 0, global number conns. */
            t->sender = &t->conns[n];
            t->sender->role = R_SENDER;
        }
        first += n;
    }
    if (o->mode == MODE_BROADCAST) {
        r->bc_left = gw_calloc(o->window, sizeof *r->bc_left);
        r->bc_ts = gw_calloc(o->window, sizeof *r->bc_ts);
        if (r->bc_left == NULL || r->bc_ts == NULL)
            return -ENOMEM;
    }
    size_t plen = PATTERN_PERIOD + o->size;
    r->pattern = gw_malloc(plen);
    if (r->pattern == NULL)
        return -ENOMEM;
    static const char alpha[PATTERN_PERIOD + 1] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < plen; i++)
        r->pattern[i] = (uint8_t)alpha[i % PATTERN_PERIOD];
    return 0;
}

static void teardown(run *r)
{
    if (r->threads)
        for (uint32_t i = 0; i < r->o.threads; i++)
            gw_free(r->threads[i].conns);
    gw_free(r->threads);
    gw_free(r->bc_left);
    gw_free(r->bc_ts);
    gw_free(r->pattern);
    gw_free(r->o.src);
}

int main(int argc, char **argv)
{
    static run r;
    gw_alloc_install();
    modes_init();
    parse_args(&r.o, argc, argv);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (setup_threads(&r) < 0) {
        fprintf(stderr, "gw-bench: out of memory\n");
        teardown(&r);
        return 1;
    }
    for (int i = 0; i < r.o.npids; i++)
        if (pstat_read(r.o.pids[i], &r.p_start[i]) < 0)
            fprintf(stderr, "gw-bench: warning: cannot read /proc/%d\n", (int)r.o.pids[i]);
    for (uint32_t i = 0; i < r.o.threads; i++) {
        int rc = uv_thread_create(&r.threads[i].tid, thread_main, &r.threads[i]);
        if (rc < 0) {
            fprintf(stderr, "gw-bench: thread: %s\n", uv_strerror(rc));
            return 1;
        }
    }
    for (uint32_t i = 0; i < r.o.threads; i++)
        uv_thread_join(&r.threads[i].tid);
    summary s;
    merge(&r, &s);
    int ok = verdict(&r, &s);
    report(&r, &s, ok);
    teardown(&r);
    return ok ? 0 : 1;
}
