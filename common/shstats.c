/* shstats.c - see shstats.h. */
#include "common/shstats.h"
#include "common/alloc.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* The page as it lies in shared memory. Fixed layout (version 1): append fields only
 * with a new version. Values are accessed with __atomic builtins. */
typedef struct shstats_slot {
    char name[GW_SHSTATS_NAME_MAX];
    uint64_t value;
    uint32_t kind;
    uint32_t reserved;
} shstats_slot;

typedef struct shstats_page {
    uint32_t magic;
    uint32_t version;
    uint32_t size; /* sizeof(shstats_page) */
    uint32_t state;
    char role[GW_SHSTATS_ROLE_MAX];
    int32_t index;
    int32_t pid;
    uint64_t start_wall_ms;
    uint64_t tick_ms;
    uint32_t count; /* published entries; written with release after the name */
    uint32_t reserved[9];
    shstats_slot slots[GW_SHSTATS_MAX];
} shstats_page;

/* One page of memory is plenty; keep it that way. */
_Static_assert(sizeof(shstats_page) <= 4096, "stats page must fit in 4 KiB");

#define SHSTATS_MAP_SIZE 4096

struct gw_shstats {
    shstats_page *page;
    int fd;       /* master: the memfd; child: -1 */
    int mapped;   /* page is an mmap (else gw_calloc) */
    int timer_on; /* timer initialised: free from its close callback */
    uv_timer_t timer;
    gw_shstats_fill_fn fill;
    void *arg;
    int n_names; /* child side: our own count of published names */
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void page_init(shstats_page *p, const char *role, int index)
{
    memset(p, 0, sizeof *p);
    p->magic = GW_SHSTATS_MAGIC;
    p->version = GW_SHSTATS_VERSION;
    p->size = (uint32_t)sizeof *p;
    p->state = GW_SHSTATS_STARTING;
    snprintf(p->role, sizeof p->role, "%s", role ? role : "");
    p->index = index;
}

static int name_valid(const char *name, size_t len)
{
    if (len == 0 || len >= GW_SHSTATS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* ---- master side ---------------------------------------------------------------- */

int gw_shstats_create(const char *role, int index, gw_shstats **out)
{
    *out = NULL;
    char label[64];
    snprintf(label, sizeof label, "gw-stats-%s-%d", role ? role : "", index);
    gw_shstats *s = gw_calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    int rc;
    s->fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (s->fd < 0) {
        rc = -errno;
        goto fail_free;
    }
    if (ftruncate(s->fd, SHSTATS_MAP_SIZE) < 0) {
        rc = -errno;
        goto fail_close;
    }
    /* A child must not be able to shrink the file under the master's mapping (SIGBUS). */
    if (fcntl(s->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        rc = -errno;
        goto fail_close;
    }
    void *m = mmap(NULL, SHSTATS_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (m == MAP_FAILED) {
        rc = -errno;
        goto fail_close;
    }
    s->page = m;
    s->mapped = 1;
    page_init(s->page, role, index);
    *out = s;
    return 0;

fail_close:
    close(s->fd);
fail_free:
    gw_free(s);
    return rc;
}

int gw_shstats_fd(const gw_shstats *s)
{
    return s->fd;
}

void gw_shstats_reset(gw_shstats *s)
{
    char role[GW_SHSTATS_ROLE_MAX];
    memcpy(role, s->page->role, sizeof role);
    role[sizeof role - 1] = '\0';
    int index = s->page->index;
    page_init(s->page, role, index);
    s->n_names = 0;
}

int gw_shstats_read(const gw_shstats *s, gw_shstats_snapshot *out)
{
    const shstats_page *p = s->page;
    memset(out, 0, sizeof *out);
    if (__atomic_load_n(&p->magic, __ATOMIC_RELAXED) != GW_SHSTATS_MAGIC ||
        __atomic_load_n(&p->version, __ATOMIC_RELAXED) != GW_SHSTATS_VERSION)
        return GW_SHSTATS_EINVALID;
    memcpy(out->role, p->role, sizeof out->role);
    out->role[sizeof out->role - 1] = '\0';
    out->index = __atomic_load_n(&p->index, __ATOMIC_RELAXED);
    out->pid = __atomic_load_n(&p->pid, __ATOMIC_RELAXED);
    out->state = (gw_shstats_state)__atomic_load_n(&p->state, __ATOMIC_RELAXED);
    out->start_wall_ms = __atomic_load_n(&p->start_wall_ms, __ATOMIC_RELAXED);
    out->tick_ms = __atomic_load_n(&p->tick_ms, __ATOMIC_RELAXED);
    uint32_t n = __atomic_load_n(&p->count, __ATOMIC_ACQUIRE);
    if (n > GW_SHSTATS_MAX)
        n = GW_SHSTATS_MAX;
    int k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const shstats_slot *sl = &p->slots[i];
        gw_shstats_entry *e = &out->entries[k];
        memcpy(e->name, sl->name, sizeof e->name);
        e->name[sizeof e->name - 1] = '\0';
        if (!name_valid(e->name, strlen(e->name)))
            continue;
        uint32_t kind = __atomic_load_n(&sl->kind, __ATOMIC_RELAXED);
        e->kind = kind == GW_SHSTATS_GAUGE ? GW_SHSTATS_GAUGE : GW_SHSTATS_COUNTER;
        e->value = __atomic_load_n(&sl->value, __ATOMIC_RELAXED);
        k++;
    }
    out->count = k;
    return 0;
}

/* ---- child side ----------------------------------------------------------------- */

static gw_shstats *private_page(const char *role, int index)
{
    gw_shstats *s = gw_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->page = gw_calloc(1, sizeof *s->page);
    if (s->page == NULL) {
        gw_free(s);
        return NULL;
    }
    s->fd = -1;
    page_init(s->page, role, index);
    return s;
}

/* Maps the page behind $GW_STATS_FD if it is ours; NULL (with a warning) otherwise. */
static shstats_page *map_env_page(const char *env, const char *role, int index)
{
    char *end;
    errno = 0;
    long fd = strtol(env, &end, 10);
    if (*env == '\0' || *end != '\0' || errno != 0 || fd < 0 || fd > 1000000) {
        LOG_WARN("GW-STATS", "%s=%s is not a descriptor number; statistics stay private",
                 GW_SHSTATS_ENV, env);
        return NULL;
    }
    struct stat st;
    if (fstat((int)fd, &st) < 0 || st.st_size < SHSTATS_MAP_SIZE) {
        LOG_WARN("GW-STATS", "%s=%ld is not a statistics page; statistics stay private",
                 GW_SHSTATS_ENV, fd);
        return NULL;
    }
    void *m = mmap(NULL, SHSTATS_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    close((int)fd);
    if (m == MAP_FAILED) {
        LOG_WARN("GW-STATS", "cannot map the statistics page (%s); statistics stay private",
                 strerror(errno));
        return NULL;
    }
    shstats_page *p = m;
    if (p->magic != GW_SHSTATS_MAGIC || p->version != GW_SHSTATS_VERSION ||
        strncmp(p->role, role, sizeof p->role) != 0 || p->index != index) {
        LOG_WARN("GW-STATS", "the statistics page is not for %s#%d; statistics stay private", role,
                 index);
        munmap(m, SHSTATS_MAP_SIZE);
        return NULL;
    }
    return p;
}

gw_shstats *gw_shstats_attach_env(const char *role, int index)
{
    const char *env = getenv(GW_SHSTATS_ENV);
    shstats_page *p = NULL;
    if (env != NULL) {
        p = map_env_page(env, role, index);
        unsetenv(GW_SHSTATS_ENV);
    }
    gw_shstats *s;
    if (p != NULL) {
        s = gw_calloc(1, sizeof *s);
        if (s == NULL) {
            munmap(p, SHSTATS_MAP_SIZE);
            return NULL;
        }
        s->page = p;
        s->mapped = 1;
        s->fd = -1;
        /* Entries a previous run may have left (the master resets, but be safe). */
        s->n_names = (int)(p->count > GW_SHSTATS_MAX ? GW_SHSTATS_MAX : p->count);
    } else {
        s = private_page(role, index);
        if (s == NULL)
            return NULL;
    }
    __atomic_store_n(&s->page->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
    __atomic_store_n(&s->page->start_wall_ms, wall_ms(), __ATOMIC_RELAXED);
    gw_shstats_tick(s);
    return s;
}

int gw_shstats_is_shared(const gw_shstats *s)
{
    return s->mapped;
}

int gw_shstats_set(gw_shstats *s, const char *name, gw_shstats_kind kind, uint64_t value)
{
    if (s == NULL)
        return 0;
    shstats_page *p = s->page;
    size_t len = strlen(name);
    for (int i = 0; i < s->n_names; i++) {
        if (strncmp(p->slots[i].name, name, GW_SHSTATS_NAME_MAX) == 0) {
            __atomic_store_n(&p->slots[i].value, value, __ATOMIC_RELAXED);
            return 0;
        }
    }
    if (!name_valid(name, len))
        return GW_SHSTATS_ENAME;
    if (s->n_names >= GW_SHSTATS_MAX)
        return GW_SHSTATS_EFULL;
    shstats_slot *sl = &p->slots[s->n_names];
    memset(sl->name, 0, sizeof sl->name);
    memcpy(sl->name, name, len);
    sl->kind = kind == GW_SHSTATS_GAUGE ? GW_SHSTATS_GAUGE : GW_SHSTATS_COUNTER;
    __atomic_store_n(&sl->value, value, __ATOMIC_RELAXED);
    s->n_names++;
    __atomic_store_n(&p->count, (uint32_t)s->n_names, __ATOMIC_RELEASE);
    return 0;
}

void gw_shstats_set_state(gw_shstats *s, gw_shstats_state state)
{
    if (s == NULL)
        return;
    __atomic_store_n(&s->page->state, (uint32_t)state, __ATOMIC_RELEASE);
}

void gw_shstats_tick(gw_shstats *s)
{
    if (s == NULL)
        return;
    __atomic_store_n(&s->page->tick_ms, gw_now_ms(), __ATOMIC_RELEASE);
}

static void on_publish(uv_timer_t *t)
{
    gw_shstats *s = container_of(t, gw_shstats, timer);
    if (s->fill != NULL)
        s->fill(s, s->arg);
    gw_shstats_tick(s);
}

int gw_shstats_publish_start(gw_shstats *s, uv_loop_t *loop, uint64_t period_ms,
                             gw_shstats_fill_fn fill, void *arg)
{
    if (s == NULL)
        return 0;
    if (s->timer_on)
        return UV_EALREADY;
    if (period_ms == 0)
        period_ms = GW_SHSTATS_PERIOD_MS;
    int rc = uv_timer_init(loop, &s->timer);
    if (rc < 0)
        return rc;
    s->timer_on = 1;
    s->fill = fill;
    s->arg = arg;
    rc = uv_timer_start(&s->timer, on_publish, period_ms, period_ms);
    if (rc < 0) {
        /* The handle is initialised: it must be closed; the page stays usable. */
        s->fill = NULL;
        return rc;
    }
    uv_unref((uv_handle_t *)&s->timer);
    on_publish(&s->timer);
    return 0;
}

/* ---- both ----------------------------------------------------------------------- */

static void release(gw_shstats *s)
{
    if (s->mapped)
        munmap(s->page, SHSTATS_MAP_SIZE);
    else
        gw_free(s->page);
    if (s->fd >= 0)
        close(s->fd);
    gw_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(container_of(h, gw_shstats, timer));
}

void gw_shstats_free(gw_shstats *s)
{
    if (s == NULL)
        return;
    s->fill = NULL;
    if (s->timer_on)
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    else
        release(s);
}

uint64_t gw_shstats_get(const gw_shstats_snapshot *snap, const char *name, int *found)
{
    for (int i = 0; i < snap->count; i++) {
        if (strcmp(snap->entries[i].name, name) == 0) {
            if (found)
                *found = 1;
            return snap->entries[i].value;
        }
    }
    if (found)
        *found = 0;
    return 0;
}

const char *gw_shstats_state_name(gw_shstats_state state)
{
    switch (state) {
    case GW_SHSTATS_STARTING:
        return "starting";
    case GW_SHSTATS_RUNNING:
        return "running";
    case GW_SHSTATS_DRAINING:
        return "draining";
    case GW_SHSTATS_STOPPING:
        return "stopping";
    }
    return "?";
}
