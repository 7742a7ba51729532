#include "common/u32map.h"
#include "common/alloc.h"

#include <errno.h>
#include <string.h>

static size_t home(uint32_t key, size_t cap)
{
    return (key * 2654435761u) & (cap - 1);
}

void u32map_deinit(u32map *m)
{
    gw_free(m->slots);
    memset(m, 0, sizeof *m);
}

static u32map_slot *find(const u32map *m, uint32_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = home(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        u32map_slot *s = &m->slots[i];
        if (!s->used)
            return NULL;
        if (s->key == key)
            return s;
    }
}

void *u32map_get(const u32map *m, uint32_t key)
{
    u32map_slot *s = find(m, key);
    return s ? s->value : NULL;
}

static void place(u32map_slot *slots, size_t cap, u32map_slot e)
{
    size_t i = home(e.key, cap);
    while (slots[i].used)
        i = (i + 1) & (cap - 1);
    slots[i] = e;
}

int u32map_put(u32map *m, uint32_t key, void *value)
{
    u32map_slot *s = find(m, key);
    if (s) {
        s->value = value;
        return 0;
    }
    if ((m->count + 1) * 4 > m->cap * 3) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        u32map_slot *n = gw_calloc(cap, sizeof *n);
        if (n == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].used)
                place(n, cap, m->slots[i]);
        gw_free(m->slots);
        m->slots = n;
        m->cap = cap;
    }
    place(m->slots, m->cap, (u32map_slot){.key = key, .used = 1, .value = value});
    m->count++;
    return 0;
}

void *u32map_del(u32map *m, uint32_t key)
{
    u32map_slot *s = find(m, key);
    if (s == NULL)
        return NULL;
    void *v = s->value;
    size_t mask = m->cap - 1, i = (size_t)(s - m->slots);
    for (size_t j = (i + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
        size_t h = home(m->slots[j].key, m->cap);
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof m->slots[i]);
    m->count--;
    return v;
}

int u32map_next(const u32map *m, size_t *pos, uint32_t *key, void **value)
{
    while (*pos < m->cap) {
        u32map_slot *s = &m->slots[(*pos)++];
        if (s->used) {
            *key = s->key;
            *value = s->value;
            return 1;
        }
    }
    return 0;
}
