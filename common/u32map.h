/* u32map.h - a hash map from uint32_t keys to pointers (open addressing, linear
 * probing, backward-shift deletion). A zeroed map is empty. Single-threaded;
 * never blocks. Inserts and deletes invalidate iteration positions. */
#ifndef GW_U32MAP_H
#define GW_U32MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct u32map_slot {
    uint32_t key;
    uint32_t used;
    void *value;
} u32map_slot;

typedef struct u32map {
    u32map_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} u32map;

/* Frees the table (not the values); the map is empty and valid afterwards. */
void u32map_deinit(u32map *m);
void *u32map_get(const u32map *m, uint32_t key);
/* Sets key -> value. 0 or -ENOMEM. */
int u32map_put(u32map *m, uint32_t key, void *value);
/* Removes key; returns its value or NULL. */
void *u32map_del(u32map *m, uint32_t key);
/* for (size_t i = 0; u32map_next(m, &i, &key, &value);) ... */
int u32map_next(const u32map *m, size_t *pos, uint32_t *key, void **value);

#endif
