/* shstats.h - a shared-memory statistics page per cluster process.
 *
 * The supervisor (gw-master) creates one page per child before spawning it: a
 * sealed memfd of one page, whose descriptor number the child finds in the
 * environment variable GW_STATS_FD. The child maps it and publishes, from its own
 * loop, a header (role, index, pid, start time, state, a "tick" stamped every
 * publish period) and up to GW_SHSTATS_MAX named 64-bit values, each a counter
 * (only grows) or a gauge. The master reads every page at any time without
 * asking the child anything, so `status` and the metrics endpoint answer even
 * while a child's loop is blocked; a tick older than a few periods means exactly
 * that ("busy").
 *
 * Concurrency: one writer (the child), any number of readers (the master). Each
 * value is stored and loaded atomically (no torn reads); values are independent
 * of each other (no snapshot consistency across names). A name is written before
 * the entry count is published (release/acquire), so a reader never sees a half
 * written name. The master re-initialises a page only while no child uses it.
 *
 * A process not started by the master (no GW_STATS_FD) gets a private page from
 * gw_shstats_attach_env(), so the publishing code path is the same.
 *
 * The child-side calls accept a NULL handle (attach failed for lack of memory) and
 * then do nothing, so callers need no checks.
 *
 * Prefix: gw_shstats_. Single-threaded per handle (the loop thread).
 */
#ifndef GW_SHSTATS_H
#define GW_SHSTATS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GW_SHSTATS_ENV "GW_STATS_FD"
#define GW_SHSTATS_MAGIC 0x54534857u /* "WHST" read as little-endian bytes */
#define GW_SHSTATS_VERSION 1u
#define GW_SHSTATS_MAX 64      /* named values per page */
#define GW_SHSTATS_NAME_MAX 32 /* bytes of a name, NUL included: 31 characters */
#define GW_SHSTATS_ROLE_MAX 16 /* bytes of the role, NUL included */
#define GW_SHSTATS_PERIOD_MS 250

/* Expected errors (positive). */
enum {
    GW_SHSTATS_ENAME = 1,    /* name empty, too long, or not [A-Za-z_][A-Za-z0-9_]* */
    GW_SHSTATS_EFULL = 2,    /* GW_SHSTATS_MAX names already published */
    GW_SHSTATS_EINVALID = 3, /* the page does not hold a valid header (bad magic/version) */
};

typedef enum gw_shstats_kind {
    GW_SHSTATS_COUNTER = 1, /* monotonic; Prometheus "counter" */
    GW_SHSTATS_GAUGE = 2,   /* goes up and down; Prometheus "gauge" */
} gw_shstats_kind;

/* Life of the child as it reports it. The master initialises a page to STARTING. */
typedef enum gw_shstats_state {
    GW_SHSTATS_STARTING = 0, /* exec'd, not yet serving */
    GW_SHSTATS_RUNNING = 1,  /* started: listening, in the cluster */
    GW_SHSTATS_DRAINING = 2, /* takes no new clients, finishing what it has (reload) */
    GW_SHSTATS_STOPPING = 3, /* stop requested, shutting down */
} gw_shstats_state;

typedef struct gw_shstats gw_shstats;

/* A copy of a page, taken by gw_shstats_read(). Strings are NUL-terminated. */
typedef struct gw_shstats_entry {
    char name[GW_SHSTATS_NAME_MAX];
    uint64_t value;
    gw_shstats_kind kind;
} gw_shstats_entry;

typedef struct gw_shstats_snapshot {
    char role[GW_SHSTATS_ROLE_MAX];
    int index;
    int pid; /* 0 until the child attached */
    gw_shstats_state state;
    uint64_t start_wall_ms; /* CLOCK_REALTIME ms when the child attached, 0 before */
    uint64_t tick_ms;       /* CLOCK_MONOTONIC ms (host-wide) of the last tick, 0 = never */
    int count;
    gw_shstats_entry entries[GW_SHSTATS_MAX];
} gw_shstats_snapshot;

/* ---- master side ---------------------------------------------------------------- */

/* Creates a page for the child `role` number `index` (role truncated to 15 chars):
 * a memfd (close-on-exec, sealed against resizing) mapped shared, initialised to
 * STARTING. Blocks briefly (syscalls only). Returns 0 and *out, or -errno / -ENOMEM
 * with *out NULL. */
int gw_shstats_create(const char *role, int index, gw_shstats **out);
/* The memfd of a page made by gw_shstats_create (close-on-exec: the spawner clears
 * FD_CLOEXEC in the child only), or -1 for other pages. */
int gw_shstats_fd(const gw_shstats *s);
/* Re-initialises the page for the next child of the slot: header as after create,
 * no values. Only while no process writes to it. */
void gw_shstats_reset(gw_shstats *s);
/* Copies the page into *out, validating it (a child may scribble on it): names are
 * cut at their size and entries with invalid names are skipped. Returns 0, or
 * GW_SHSTATS_EINVALID when the header is not valid (*out then zeroed). Never blocks. */
int gw_shstats_read(const gw_shstats *s, gw_shstats_snapshot *out);

/* ---- child side ----------------------------------------------------------------- */

/* Attaches to the page whose descriptor is in $GW_STATS_FD (mapped, then the
 * descriptor is closed and the variable removed from the environment, so nothing
 * the process spawns inherits it), records pid and start time. Without the variable,
 * or when the page does not belong to (role, index) (a warning is logged), returns a
 * private page instead. Returns NULL only on -ENOMEM. Call once, after logging is set
 * up. */
gw_shstats *gw_shstats_attach_env(const char *role, int index);
/* 1 when the page is shared with a master, 0 for a private page. */
int gw_shstats_is_shared(const gw_shstats *s);

/* Publishes `value` under `name` (added on first use with `kind`; the kind of an
 * existing name is kept). O(number of names). Returns 0, GW_SHSTATS_ENAME or
 * GW_SHSTATS_EFULL. */
int gw_shstats_set(gw_shstats *s, const char *name, gw_shstats_kind kind, uint64_t value);
static inline int gw_shstats_counter(gw_shstats *s, const char *name, uint64_t value)
{
    return gw_shstats_set(s, name, GW_SHSTATS_COUNTER, value);
}
static inline int gw_shstats_gauge(gw_shstats *s, const char *name, uint64_t value)
{
    return gw_shstats_set(s, name, GW_SHSTATS_GAUGE, value);
}
void gw_shstats_set_state(gw_shstats *s, gw_shstats_state state);
/* Stamps the tick with the current monotonic time. */
void gw_shstats_tick(gw_shstats *s);

/* Called every period from the loop to copy the process's statistics into the page
 * (with gw_shstats_set); the tick is stamped right after it returns. */
typedef void (*gw_shstats_fill_fn)(gw_shstats *s, void *arg);

/* Starts a repeating timer on `loop` (unreferenced: it never keeps the loop alive)
 * that calls fill (may be NULL) and stamps the tick every period_ms (0: the default
 * GW_SHSTATS_PERIOD_MS); runs fill once now. At most once per handle. Returns 0 or
 * a negative UV_E* code (nothing started). */
int gw_shstats_publish_start(gw_shstats *s, uv_loop_t *loop, uint64_t period_ms,
                             gw_shstats_fill_fn fill, void *arg);

/* ---- both ----------------------------------------------------------------------- */

/* Releases the handle: stops the publishing timer, unmaps the page and closes the
 * memfd. When a timer was started, the memory is freed from its close callback, so
 * the loop must run once more (call from a loop callback, e.g. when the process has
 * stopped). NULL is a no-op. No fill call happens after this returns. */
void gw_shstats_free(gw_shstats *s);

/* Value of `name` in a snapshot; *found (may be NULL) gets 1 or 0 (value 0). */
uint64_t gw_shstats_get(const gw_shstats_snapshot *snap, const char *name, int *found);
/* "starting", "running", "draining", "stopping" ("?" for anything else). */
const char *gw_shstats_state_name(gw_shstats_state state);

#endif
