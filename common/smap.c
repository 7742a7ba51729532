#include "common/smap.h"
#include "common/alloc.h"

#include <errno.h>
#include <string.h>

static uint32_t hash_bytes(const char *k, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)k[i];
        h *= 16777619u;
    }
    return h ? h : 1;
}

void smap_init(smap *m)
{
    memset(m, 0, sizeof *m);
}

void smap_deinit(smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        gw_free(m->slots[i].key);
    gw_free(m->slots);
    smap_init(m);
}

static smap_entry *find(const smap *m, const char *key, size_t klen, uint32_t h)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        smap_entry *e = &m->slots[i];
        if (e->key == NULL)
            return NULL;
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
}

void *smap_get(const smap *m, const char *key, size_t klen)
{
    smap_entry *e = find(m, key, klen, hash_bytes(key, klen));
    return e ? e->value : NULL;
}

static void place(smap_entry *slots, size_t cap, smap_entry e)
{
    size_t mask = cap - 1;
    size_t i = e.hash & mask;
    while (slots[i].key)
        i = (i + 1) & mask;
    slots[i] = e;
}

static int grow(smap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    smap_entry *s = gw_calloc(cap, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            place(s, cap, m->slots[i]);
    gw_free(m->slots);
    m->slots = s;
    m->cap = cap;
    return 0;
}

int smap_put(smap *m, const char *key, size_t klen, void *value, void **old)
{
    uint32_t h = hash_bytes(key, klen);
    smap_entry *e = find(m, key, klen, h);
    if (e) {
        if (old)
            *old = e->value;
        e->value = value;
        return 0;
    }
    if (old)
        *old = NULL;
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -ENOMEM;
    if (klen > UINT32_MAX)
        return -ENOMEM;
    smap_entry n = {.klen = (uint32_t)klen, .hash = h, .value = value};
    n.key = gw_malloc(klen + 1);
    if (n.key == NULL)
        return -ENOMEM;
    memcpy(n.key, key, klen);
    n.key[klen] = '\0';
    place(m->slots, m->cap, n);
    m->count++;
    return 0;
}

void *smap_del(smap *m, const char *key, size_t klen)
{
    uint32_t h = hash_bytes(key, klen);
    smap_entry *e = find(m, key, klen, h);
    if (e == NULL)
        return NULL;
    void *v = e->value;
    gw_free(e->key);
    size_t mask = m->cap - 1;
    size_t i = (size_t)(e - m->slots);
    /* Backward-shift: move later entries of the cluster into the hole. */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        smap_entry *x = &m->slots[j];
        if (x->key == NULL)
            break;
        size_t home = x->hash & mask;
        /* x may move to i if i lies cyclically in [home, j). */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = *x;
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof m->slots[i]);
    m->count--;
    return v;
}

int smap_next(const smap *m, size_t *pos, const smap_entry **e)
{
    while (*pos < m->cap) {
        smap_entry *s = &m->slots[(*pos)++];
        if (s->key) {
            *e = s;
            return 1;
        }
    }
    return 0;
}
