/* smap.h - a hash map from byte-string keys to pointers.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), keys copied into the map. Values are the caller's. A zeroed smap
 * is an empty map. Single-threaded; never blocks. Iteration order is unspecified
 * and any insert or delete invalidates iterators.
 */
#ifndef GW_SMAP_H
#define GW_SMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct smap_entry {
    char *key; /* NUL-terminated copy (keys may not contain NUL) */
    uint32_t klen;
    uint32_t hash;
    void *value;
} smap_entry;

typedef struct smap {
    smap_entry *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} smap;

void smap_init(smap *m);
/* Frees the map's memory (not the values); leaves it empty and valid. */
void smap_deinit(smap *m);
/* The value for key, or NULL. */
void *smap_get(const smap *m, const char *key, size_t klen);
/* Sets key -> value (replacing any value). Returns 0 or -ENOMEM. *old, when not
 * NULL, receives the replaced value (NULL if the key was new). */
int smap_put(smap *m, const char *key, size_t klen, void *value, void **old);
/* Removes key; returns its value, or NULL if absent. */
void *smap_del(smap *m, const char *key, size_t klen);
static inline size_t smap_count(const smap *m)
{
    return m->count;
}
/* Iteration: for (size_t i = 0; smap_next(m, &i, &e);) ... */
int smap_next(const smap *m, size_t *pos, const smap_entry **e);

#endif
