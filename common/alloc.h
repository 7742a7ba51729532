/* alloc.h - the one allocation pair of the project.
 *
 * Every heap allocation of project code goes through gw_malloc/gw_free (and the
 * helpers below), so that tests can inject failure and count outstanding blocks.
 * gw_alloc_install() hands the same pair to libuv and jansson.
 *
 * All functions may be called from any thread, never block and return NULL on
 * failure (gw_free(NULL) is a no-op).
 */
#ifndef GW_ALLOC_H
#define GW_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *gw_malloc(size_t n);
void *gw_calloc(size_t count, size_t size);
void *gw_realloc(void *p, size_t n);
void gw_free(void *p);
/* Copies a NUL-terminated string; the caller owns the result. */
char *gw_strdup(const char *s);
/* Copies n bytes and appends a NUL; the caller owns the result. */
char *gw_strndup(const char *s, size_t n);

/* Routes libuv (uv_replace_allocator) and jansson (json_set_alloc_funcs) through
 * the pair above. Call once at process start, before any uv or json call. */
void gw_alloc_install(void);

/* Test hooks. gw_alloc_fail_after(n): the (n+1)-th allocation from now fails, and
 * every one after it until gw_alloc_fail_after(-1) resets. Counting is on only while
 * gw_alloc_track(1) is set; gw_alloc_outstanding() is allocations minus frees. */
void gw_alloc_fail_after(long n);
void gw_alloc_track(int on);
long gw_alloc_outstanding(void);

#endif
