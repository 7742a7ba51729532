#include "common/alloc.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static atomic_long fail_countdown = -1; /* -1: never fail */
static atomic_int tracking;
static atomic_long outstanding;

static int should_fail(void)
{
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c < 0)
        return 0;
    if (c == 0)
        return 1;
    atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
    return 0;
}

static void count(long d)
{
    if (atomic_load_explicit(&tracking, memory_order_relaxed))
        atomic_fetch_add_explicit(&outstanding, d, memory_order_relaxed);
}

void *gw_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        count(1);
    return p;
}

void *gw_calloc(size_t nmemb, size_t size)
{
    if (should_fail())
        return NULL;
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p)
        count(1);
    return p;
}

void *gw_realloc(void *p, size_t n)
{
    if (p == NULL)
        return gw_malloc(n);
    if (n == 0) {
        gw_free(p);
        return NULL;
    }
    if (should_fail())
        return NULL;
    return realloc(p, n);
}

void gw_free(void *p)
{
    if (p == NULL)
        return;
    count(-1);
    free(p);
}

char *gw_strdup(const char *s)
{
    return gw_strndup(s, strlen(s));
}

char *gw_strndup(const char *s, size_t n)
{
    char *d = gw_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void *uv_realloc_shim(void *p, size_t n)
{
    return gw_realloc(p, n);
}

void gw_alloc_install(void)
{
    uv_replace_allocator(gw_malloc, uv_realloc_shim, gw_calloc, gw_free);
    json_set_alloc_funcs(gw_malloc, gw_free);
}

void gw_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

void gw_alloc_track(int on)
{
    atomic_store(&tracking, on);
}

long gw_alloc_outstanding(void)
{
    return atomic_load(&outstanding);
}
