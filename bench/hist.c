/* hist.c - see hist.h. */
#include "bench/hist.h"

#include <string.h>

void hist_reset(hist *h)
{
    memset(h, 0, sizeof *h);
}

void hist_merge(hist *dst, const hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

/* Largest value that falls into bucket i. */
static uint64_t bucket_high(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned k = i - HIST_SUB;
    unsigned shift = k / HIST_HALF + 1;
    uint64_t sub = k % HIST_HALF + HIST_HALF;
    return ((sub + 1) << shift) - 1;
}

uint64_t hist_percentile(const hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    double r = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
